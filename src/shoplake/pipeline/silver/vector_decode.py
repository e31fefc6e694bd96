"""Decode a whole Arrow batch of Confluent-framed Avro records at once with NumPy: silver's fast path.

Workaround for: Spark 4.2's ``from_avro`` neither strips the Confluent wire format nor resolves writer schemas
from a Schema Registry, and fastavro decodes one record per Python call. Delete when Spark's Avro reader
accepts Confluent-framed records with a registry (it does on Databricks only).

Per-record decoding (fastavro, :meth:`Decoder.decode`) costs a Python call per message, which capped silver's
throughput; Spark's ``from_avro`` plus the byte-exact checks it needs was no faster here. A flat
record's binary encoding is simple enough to walk for all rows together: one read position per row, and
per field one vectorised step - a zig-zag varint (longs, ints, lengths, union branches), a byte (booleans),
fixed little-endian bytes (doubles/floats) or a length-prefixed byte range gathered into an Arrow buffer
(strings/bytes). A batch costs a few NumPy calls per field, not a Python call per record.

A row is decoded here only when it is unambiguously a well-formed record of the reader schema:

* framed: magic byte 0, a body after the 5-byte header, a schema id whose writer schema *is* the reader
  schema (no resolution step);
* every varint ends within 10 bytes and inside the message (a 10th byte may only carry bit 63), every
  length is >= 0 and inside the message, booleans are 0 or 1, union branches exist, ints fit 32 bits;
* every string byte is ASCII, which is valid UTF-8 that every decoder reads the same way;
* the body ends exactly at the end of the message (no trailing bytes).

Every other row returns ``ok = False`` and the caller hands it to the per-record decoder, unchanged, so a
poison message gets exactly the reason code it always got. The unit tests compare both decoders on valid,
edge-case and fuzzed input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa

HEADER_SIZE: Final = 5
MAX_VARINT_BYTES: Final = 10
_PRIMITIVES: Final[dict[str, pa.DataType]] = {
    "string": pa.string(),
    "bytes": pa.binary(),
    "long": pa.int64(),
    "int": pa.int32(),
    "boolean": pa.bool_(),
    "double": pa.float64(),
    "float": pa.float32(),
}

Bool = npt.NDArray[np.bool_]
I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class FieldPlan:
    """How to read one field: its primitive type and, for a ``[null, T]`` union, the null branch index."""

    name: str
    kind: str
    null_branch: int | None


def plan(reader_schema: dict[str, Any]) -> list[FieldPlan] | None:
    """The field plan of a flat record schema, or None when a field is beyond this decoder (all rows slow)."""
    if reader_schema.get("type") != "record":
        return None
    fields = []
    for f in reader_schema.get("fields", []):
        t = f["type"]
        null_branch = None
        if isinstance(t, list):
            if len(t) != 2 or "null" not in t:  # only [null, T] pairs
                return None
            null_branch = t.index("null")
            t = t[1 - null_branch]
        if isinstance(t, dict) and set(t) <= {"type", "logicalType"}:
            t = t["type"]
        if not isinstance(t, str) or t not in _PRIMITIVES:
            return None
        fields.append(FieldPlan(f["name"], t, null_branch))
    return fields


class _Rows:
    """The walk's state: the message bytes, each row's read position and end, and which rows are still ok."""

    def __init__(self, data: U8, starts: I64, ends: I64, ok: Bool) -> None:
        # One zero byte when there is no data, so that a clamped gather index is always valid.
        self.data = data if len(data) else np.zeros(1, dtype=np.uint8)
        self.last = len(self.data) - 1
        self.ends = ends
        self.pos = starts + HEADER_SIZE
        self.ok = ok

    def gather(self, idx: I64) -> U8:
        return self.data[np.minimum(idx, self.last)]

    def varint(self, present: Bool | None = None) -> I64:
        """Zig-zag varint at the position of every present row (0 elsewhere); advances those rows.

        Byte by byte over the rows whose varint has not ended yet: the work follows the bytes actually
        there (most varints here are one or two bytes long).
        """
        wanted = self.ok if present is None else self.ok & present
        value = np.zeros(len(self.pos), dtype=np.uint64)
        length = np.zeros(len(self.pos), dtype=np.int64)
        rows = np.flatnonzero(wanted)
        for k in range(MAX_VARINT_BYTES):
            if not rows.size:
                break
            at = self.pos[rows] + k
            inside = at < self.ends[rows]
            byte = self.gather(at)
            value[rows] |= (byte & 0x7F).astype(np.uint64) << np.uint64(7 * k)
            ended = inside & (byte < 0x80)
            if k == MAX_VARINT_BYTES - 1:
                ended &= byte <= 1  # a 10th byte may only carry bit 63; more overflows a long
            length[rows[ended]] = k + 1
            self.ok[rows[~inside]] = False
            rows = rows[inside & (byte >= 0x80)]
        self.ok[rows] = False  # still going after 10 bytes
        if present is None:
            self.ok &= length > 0
        else:
            self.ok &= ~present | (length > 0)
        self.pos = self.pos + np.where(self.ok, length, 0)
        decoded: I64 = (value >> np.uint64(1)).astype(np.int64) ^ -(value & np.uint64(1)).astype(np.int64)
        return decoded

    def fixed(self, width: int, present: Bool) -> U8:
        """``width`` bytes per present row, as an (n, width) matrix; advances those rows."""
        idx = self.pos[:, None] + np.arange(width)
        self.ok &= ~present | (self.pos + width <= self.ends)
        out = self.gather(idx)
        self.pos = np.where(self.ok & present, self.pos + width, self.pos)
        return out

    def byte_ranges(self, present: Bool, ascii_only: bool) -> tuple[I64, U8]:
        """Length-prefixed byte strings of present rows: (Arrow offsets, concatenated bytes)."""
        length = self.varint(present)
        self.ok &= ~present | ((length >= 0) & (self.pos + np.maximum(length, 0) <= self.ends))
        length = np.where(self.ok & present, length, 0)
        offsets = np.zeros(len(length) + 1, dtype=np.int64)
        np.cumsum(length, out=offsets[1:])
        total = int(offsets[-1])
        idx = np.repeat(self.pos - offsets[:-1], length) + np.arange(total, dtype=np.int64)
        chunk = self.gather(idx)
        if ascii_only:
            high = np.flatnonzero(chunk >= 0x80)
            if high.size:
                self.ok[np.searchsorted(offsets, high, side="right") - 1] = False
        self.pos = np.where(self.ok, self.pos + length, self.pos)
        return offsets, chunk


def _validity(present: Bool) -> pa.Buffer | None:
    return None if present.all() else pa.py_buffer(np.packbits(present, bitorder="little"))


def _column(rows: _Rows, field: FieldPlan, present: Bool) -> pa.Array:
    n = len(present)
    kind = field.kind
    if kind in ("string", "bytes"):
        offsets, chunk = rows.byte_ranges(present, ascii_only=kind == "string")
        if offsets[-1] > np.iinfo(np.int32).max:
            rows.ok[:] = False  # beyond one Arrow string array: the per-record path copes
            return pa.nulls(n, _PRIMITIVES[kind])
        buffers = [_validity(present), pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(chunk)]
        return pa.Array.from_buffers(_PRIMITIVES[kind], n, buffers)
    if kind == "boolean":
        byte = rows.fixed(1, present)[:, 0]
        rows.ok &= ~present | (byte <= 1)
        return pa.array(byte == 1, pa.bool_(), mask=~present)
    if kind in ("double", "float"):
        width = 8 if kind == "double" else 4
        raw = np.ascontiguousarray(rows.fixed(width, present))
        values = raw.view("<f8" if width == 8 else "<f4").reshape(n)
        return pa.array(values, _PRIMITIVES[kind], mask=~present)
    value = np.where(present, rows.varint(present), 0)
    if kind == "int":
        rows.ok &= (value >= np.iinfo(np.int32).min) & (value <= np.iinfo(np.int32).max)
        return pa.array(np.where(rows.ok, value, 0).astype(np.int32), pa.int32(), mask=~present)
    return pa.array(value, pa.int64(), mask=~present)


@dataclass(frozen=True)
class Decoded:
    """``ok[i]``: row i was decoded here; ``schema_ids``/``columns`` hold its values (garbage where not ok)."""

    ok: Bool
    schema_ids: pa.Array
    columns: list[pa.Array]


def _message_bounds(values: pa.Array) -> tuple[U8, I64, I64, Bool]:
    """(data, start, end, non-null) of a binary or large-binary Arrow array, zero-copy.

    ``data`` is only this array's part of the buffer (a batch sliced from a bigger one shares its buffer).
    """
    n = len(values)
    validity, offsets_buf, data_buf = values.buffers()
    offset_type = np.int64 if pa.types.is_large_binary(values.type) else np.int32
    offsets = np.frombuffer(offsets_buf, dtype=offset_type)[values.offset : values.offset + n + 1].astype(np.int64)
    base, stop = (int(offsets[0]), int(offsets[-1])) if n else (0, 0)
    data = np.frombuffer(data_buf, dtype=np.uint8)[base:stop] if data_buf is not None else np.zeros(0, np.uint8)
    offsets -= base
    present = np.ones(n, dtype=np.bool_) if validity is None else ~np.asarray(values.is_null())
    return data, offsets[:-1], offsets[1:], present


def decode_values(values: pa.Array, fields: list[FieldPlan], fast_ids: frozenset[int]) -> Decoded:
    """Walk every framed message of ``values`` whose schema id is in ``fast_ids`` (see the module doc)."""
    data, starts, ends, present = _message_bounds(values)
    n = len(values)
    rows = _Rows(data, starts, ends, present & (ends - starts > HEADER_SIZE))
    header = rows.gather(starts[:, None] + np.arange(HEADER_SIZE))
    ids = (header[:, 1:].astype(np.int64) << np.array([24, 16, 8, 0])).sum(axis=1)
    rows.ok &= (header[:, 0] == 0) & np.isin(ids, np.fromiter(fast_ids, dtype=np.int64, count=len(fast_ids)))
    columns = []
    for field in fields:
        present_value = np.ones(n, dtype=np.bool_)
        if field.null_branch is not None:
            branch = rows.varint()
            rows.ok &= (branch == 0) | (branch == 1)
            present_value = branch != field.null_branch
        columns.append(_column(rows, field, present_value))
    rows.ok &= rows.pos == ends
    return Decoded(rows.ok, pa.array(np.where(rows.ok, ids, 0).astype(np.int32), pa.int32()), columns)


def candidate_ids(values: pa.Array) -> set[int]:
    """Distinct schema ids of the framed messages of ``values`` (for the caller's reader-schema check)."""
    data, starts, ends, present = _message_bounds(values)
    framed = present & (ends - starts > HEADER_SIZE)
    if not framed.any():
        return set()
    head = data[starts[framed][:, None] + np.arange(HEADER_SIZE)]
    head = head[head[:, 0] == 0]
    ids = (head[:, 1:].astype(np.int64) << np.array([24, 16, 8, 0])).sum(axis=1)
    return {int(i) for i in np.unique(ids)}
