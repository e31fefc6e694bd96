"""Per-record decoding of Confluent-framed Avro with a precise reason for every failure.

Spark's ``from_avro`` neither strips the 5-byte Confluent header nor honours a per-record schema id, and in
PERMISSIVE mode it turns every kind of poison into the same null. This module decodes each message with
the *writer* schema its id names (fetched from the registry once per id and process) resolved against the
*reader* schema the platform is compiled against, so older and newer producers both decode, and it labels
every message it cannot decode with one reason code. It works on Arrow batches so Spark can run it with
``mapInArrow`` (see :func:`shoplake.pipeline.silver.transforms.decode_frames`).

Logical types are stripped from both schemas before parsing: ``timestamp-millis`` stays an integer here
and Spark converts it with ``timestamp_millis``; building a Python ``datetime`` per record would cost more
than the rest of the decode.
"""

from __future__ import annotations

import copy
import io
import json
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import fastavro
import numpy as np
import pyarrow as pa
import requests

from shoplake.pipeline.silver.vector_decode import candidate_ids, decode_values, plan

MAGIC_BYTE: Final = 0
HEADER_SIZE: Final = 5
# Registry ids are signed 32-bit: a header naming a larger id cannot refer to a schema (and would not fit
# the int32 ``schema_id`` column), so it is refused without asking the registry.
MAX_SCHEMA_ID: Final = 2**31 - 1

# Reason codes of messages that never became a record (validation reasons are in transforms.py).
NOT_AVRO_FRAMED: Final = "not_avro_framed"
UNKNOWN_SCHEMA_ID: Final = "unknown_schema_id"
TRUNCATED_BODY: Final = "truncated_body"
CORRUPT_BODY: Final = "corrupt_body"
TRAILING_BYTES: Final = "trailing_bytes"
INCOMPATIBLE_SCHEMA: Final = "incompatible_schema"

_AVRO_TO_ARROW: Final[dict[str, pa.DataType]] = {
    "string": pa.string(),
    "long": pa.int64(),
    "int": pa.int32(),
    "boolean": pa.bool_(),
    "double": pa.float64(),
    "float": pa.float32(),
    "bytes": pa.binary(),
}


class RegistryUnavailableError(RuntimeError):
    """The registry did not answer: the batch must fail and be retried, not quarantine valid data."""


class SchemaSource(Protocol):
    """Where writer schemas come from: the registry in production, a dict in unit tests."""

    def writer_schema(self, schema_id: int) -> dict[str, Any] | None:
        """The schema registered under ``schema_id``, or None when no such id exists."""
        ...


@dataclass(frozen=True)
class StaticSchemas:
    """A fixed id -> schema mapping (unit tests, and replays against a registry snapshot)."""

    schemas: Mapping[int, dict[str, Any]]

    def writer_schema(self, schema_id: int) -> dict[str, Any] | None:
        return self.schemas.get(schema_id)


_REGISTRY_CACHE: dict[tuple[str, int], dict[str, Any]] = {}


@dataclass(frozen=True)
class RegistrySchemas:
    """Confluent-compatible ``GET /schemas/ids/{id}``; registered schemas are immutable, so hits are cached
    for the life of the process (Spark reuses its Python workers, so each id costs one request per worker)."""

    url: str
    timeout: float = 10.0

    def writer_schema(self, schema_id: int) -> dict[str, Any] | None:
        key = (self.url, schema_id)
        cached = _REGISTRY_CACHE.get(key)
        if cached is not None:
            return cached
        try:
            resp = requests.get(f"{self.url}/schemas/ids/{schema_id}", timeout=self.timeout)
        except requests.RequestException as exc:
            raise RegistryUnavailableError(f"schema registry {self.url} unreachable: {exc}") from exc
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise RegistryUnavailableError(
                f"schema registry {self.url} answered {resp.status_code} for id {schema_id}: {resp.text[:200]}"
            )
        schema: dict[str, Any] = json.loads(resp.json()["schema"])
        _REGISTRY_CACHE[key] = schema
        return schema


def without_logical_types(schema: Any) -> Any:
    """A deep copy of ``schema`` with every ``logicalType`` removed (see the module docstring)."""
    if isinstance(schema, dict):
        return {k: without_logical_types(v) for k, v in schema.items() if k != "logicalType"}
    if isinstance(schema, list):
        return [without_logical_types(s) for s in schema]
    return copy.copy(schema)


def _arrow_type(avro_type: Any) -> pa.DataType:
    if isinstance(avro_type, list):
        branches = [t for t in avro_type if t != "null"]
        if len(branches) != 1:
            raise ValueError(f"only [null, T] unions are supported, got {avro_type!r}")
        return _arrow_type(branches[0])
    if isinstance(avro_type, dict):
        return _arrow_type(avro_type["type"])
    if avro_type not in _AVRO_TO_ARROW:
        raise ValueError(f"Avro type {avro_type!r} has no column mapping")
    return _AVRO_TO_ARROW[avro_type]


def record_fields(reader_schema: dict[str, Any]) -> list[pa.Field]:
    """The decoded columns (all nullable: a failed decode leaves them empty)."""
    return [pa.field(f["name"], _arrow_type(f["type"]), nullable=True) for f in reader_schema["fields"]]


DECODE_STATUS_FIELDS: Final = [
    pa.field("schema_id", pa.int32(), nullable=True),
    pa.field("decode_error", pa.string(), nullable=True),
    pa.field("decode_detail", pa.string(), nullable=True),
]


@dataclass
class Decoder:
    """Decodes framed messages against one reader schema, caching parsed schemas per writer id."""

    reader_schema: dict[str, Any]
    schemas: SchemaSource
    _reader: Any = field(init=False, repr=False)
    _parsed: dict[int, tuple[Any, Any] | None] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._reader = fastavro.parse_schema(without_logical_types(self.reader_schema))
        self._names = [f["name"] for f in self.reader_schema["fields"]]
        self._plan = plan(without_logical_types(self.reader_schema))

    def _schemas_for(self, schema_id: int) -> tuple[Any, Any] | None:
        if schema_id not in self._parsed:
            writer = self.schemas.writer_schema(schema_id)
            if writer is None:
                self._parsed[schema_id] = None
            else:
                parsed = fastavro.parse_schema(without_logical_types(writer))
                same = parsed == self._reader
                # None as reader schema = no resolution step: markedly faster when writer == reader.
                self._parsed[schema_id] = (parsed, None if same else self._reader)
        return self._parsed[schema_id]

    def reads_as_reader(self, schema_id: int) -> bool:
        """True when ``schema_id`` names the reader schema itself (a record decodes with no resolution)."""
        pair = self._schemas_for(schema_id)
        return pair is not None and pair[1] is None

    def decode(self, message: bytes | None) -> tuple[int | None, dict[str, Any] | None, str | None, str | None]:
        """``(schema_id, record, reason, detail)``: exactly one of record / reason is set."""
        if message is None or len(message) < HEADER_SIZE:
            size = "no value" if message is None else f"{len(message)} bytes"
            return None, None, NOT_AVRO_FRAMED, f"{size}; a Confluent header alone is {HEADER_SIZE} bytes"
        if message[0] != MAGIC_BYTE:
            return None, None, NOT_AVRO_FRAMED, f"magic byte {message[0]:#04x}, expected 0x00"
        schema_id = int.from_bytes(message[1:HEADER_SIZE], "big")
        if schema_id > MAX_SCHEMA_ID:
            return None, None, UNKNOWN_SCHEMA_ID, f"schema id {schema_id} is beyond the signed 32-bit id range"
        pair = self._schemas_for(schema_id)
        if pair is None:
            return schema_id, None, UNKNOWN_SCHEMA_ID, f"schema id {schema_id} is not in the registry"
        if len(message) == HEADER_SIZE:
            return schema_id, None, TRUNCATED_BODY, "header only, no Avro body"
        stream = io.BytesIO(message)
        stream.seek(HEADER_SIZE)
        try:
            record = fastavro.schemaless_reader(stream, pair[0], pair[1])
        except (EOFError, StopIteration, struct.error) as exc:
            return schema_id, None, TRUNCATED_BODY, f"body ends early ({len(message) - HEADER_SIZE} bytes): {exc!r}"
        except fastavro.read.SchemaResolutionError as exc:
            return schema_id, None, INCOMPATIBLE_SCHEMA, str(exc)[:300]
        except Exception as exc:  # fastavro raises plain ValueError/IndexError/UnicodeDecodeError on garbage
            return schema_id, None, CORRUPT_BODY, f"{type(exc).__name__}: {exc}"[:300]
        left = len(message) - stream.tell()
        if left:
            return schema_id, None, TRAILING_BYTES, f"{left} bytes left after the record"
        if not isinstance(record, dict):
            return schema_id, None, INCOMPATIBLE_SCHEMA, f"schema id {schema_id} does not describe a record"
        return schema_id, record, None, None

    def decode_batch(self, batch: pa.RecordBatch, value_column: str = "value") -> pa.RecordBatch:
        """``batch`` plus the status columns and one column per reader-schema field, rows in input order.

        Well-formed records of the reader schema are decoded for the whole batch at once
        (:mod:`.vector_decode`); every other message goes through :meth:`decode`, one by one.
        """
        values = batch.column(value_column)
        fields = self._plan
        if fields is None or batch.num_rows == 0:
            return self.decode_rows(batch, value_column)
        fast_ids = frozenset(i for i in candidate_ids(values) if i <= MAX_SCHEMA_ID and self.reads_as_reader(i))
        if not fast_ids:
            return self.decode_rows(batch, value_column)
        decoded = decode_values(values, fields, fast_ids)
        n = batch.num_rows
        status = [decoded.schema_ids, pa.nulls(n, pa.string()), pa.nulls(n, pa.string())]
        fast = pa.RecordBatch.from_arrays(
            [*batch.columns, *status, *decoded.columns], schema=self._out_schema(batch.schema)
        )
        if decoded.ok.all():
            return fast
        slow_rows = np.flatnonzero(~decoded.ok)
        slow = self.decode_rows(batch.take(pa.array(slow_rows)), value_column)
        if slow_rows.size == n:
            return slow
        # Fast rows then slow rows, put back in input order.
        fast_rows = np.flatnonzero(decoded.ok)
        both = pa.Table.from_batches([fast.take(pa.array(fast_rows)), slow]).combine_chunks()
        order = np.empty(n, dtype=np.int64)
        order[np.concatenate([fast_rows, slow_rows])] = np.arange(n)
        return both.take(pa.array(order)).to_batches()[0]

    def _out_schema(self, bronze: pa.Schema) -> pa.Schema:
        return pa.schema([*bronze, *DECODE_STATUS_FIELDS, *record_fields(self.reader_schema)])

    def decode_rows(self, batch: pa.RecordBatch, value_column: str = "value") -> pa.RecordBatch:
        """:meth:`decode_batch`, one :meth:`decode` call per message (the reference every fast path matches)."""
        values = batch.column(value_column).to_pylist()
        n = len(values)
        ids: list[int | None] = [None] * n
        errors: list[str | None] = [None] * n
        details: list[str | None] = [None] * n
        cols: dict[str, list[Any]] = {name: [None] * n for name in self._names}
        names = self._names
        for i, message in enumerate(values):
            schema_id, record, reason, detail = self.decode(message)
            ids[i] = schema_id
            if record is None:
                errors[i] = reason
                details[i] = detail
                continue
            for name in names:
                cols[name][i] = record[name]
        out_fields = [*record_fields(self.reader_schema)]
        arrays = [pa.array(ids, pa.int32()), pa.array(errors, pa.string()), pa.array(details, pa.string())]
        arrays += [pa.array(cols[f.name], f.type) for f in out_fields]
        return pa.RecordBatch.from_arrays([*batch.columns, *arrays], schema=self._out_schema(batch.schema))


def decode_batches(batches: Iterator[pa.RecordBatch], decoder: Decoder) -> Iterator[pa.RecordBatch]:
    """The ``mapInArrow`` body: decode every batch of a partition."""
    for batch in batches:
        yield decoder.decode_batch(batch)
