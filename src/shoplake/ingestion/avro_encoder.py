"""Vectorised Avro binary encoding of whole :class:`TransactionBatch` chunks, Confluent-framed.

Encoding record by record with fastavro costs Python work per message, which alone would keep ingestion
from its 100k msg/s target. The transaction schema is fixed, so this module encodes a whole
chunk with NumPy instead: every field becomes a matrix of bytes plus a per-row length (zig-zag varints for
longs and string lengths, lookup tables for categorical strings, digit/hex arithmetic for ids and IPs), the
per-row field offsets are a cumulative sum, and one scatter per field writes all rows into a single buffer.
Messages are then zero-logic slices of that buffer.

Correctness is pinned by unit tests that compare every byte with ``fastavro.schemaless_writer`` (plus the
5-byte header from :mod:`shoplake.contracts.wire`). The field order below must match the schema file; a
mismatch fails at import, so a schema change cannot silently produce wrong bytes.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from shoplake.contracts import wire
from shoplake.contracts.schemas import field_names
from shoplake.ingestion import vocab
from shoplake.ingestion.generator import TransactionBatch

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]

ENCODED_FIELDS: Final = (
    "transaction_id",
    "event_time",
    "customer_id",
    "merchant_id",
    "merchant_category",
    "merchant_country",
    "amount_cents",
    "currency",
    "payment_method",
    "channel",
    "device_id",
    "device_type",
    "ip_address",
    "ip_country",
    "status",
    "is_fraud",
    "fraud_pattern",
)
if field_names() != ENCODED_FIELDS:  # pragma: no cover - guards a schema edit without an encoder edit
    raise ImportError(f"avro_encoder encodes {ENCODED_FIELDS} but the schema declares {field_names()}")

_HEX: Final = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_ZERO: Final = ord("0")
CUSTOMER_DIGITS: Final = 8
MERCHANT_DIGITS: Final = 6
SEQ_DIGITS: Final = 12
MAX_SEQ: Final = 10**SEQ_DIGITS - 1
KEY_WIDTH: Final = 1 + CUSTOMER_DIGITS  # the Kafka key is the customer id text, e.g. C00012345


@dataclass(frozen=True)
class EncodedBatch:
    """Confluent-framed Avro messages of one chunk, back to back in ``data``; message i is
    ``data[offsets[i]:offsets[i + 1]]`` and its Kafka key (the customer id) is ``data[key_starts[i]:+9]``."""

    data: bytes
    offsets: I64
    key_starts: I64

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def messages(self) -> list[bytes]:
        data, off = self.data, self.offsets.tolist()
        return [data[a:b] for a, b in itertools.pairwise(off)]

    def keys(self) -> list[bytes]:
        data = self.data
        return [data[k : k + KEY_WIDTH] for k in self.key_starts.tolist()]


class _Piece:
    """A field's bytes for every row: ``mat[i, :lens[i]]`` (``lens`` None means the full width)."""

    __slots__ = ("lens", "mat")

    def __init__(self, mat: U8, lens: I64 | None = None) -> None:
        self.mat = mat
        self.lens = lens

    def lengths(self, n: int) -> I64:
        return np.full(n, self.mat.shape[1], dtype=np.int64) if self.lens is None else self.lens


def zigzag_varints(values: I64) -> tuple[U8, I64]:
    """Avro ``long`` encoding of each value: zig-zag, then 7-bit little-endian groups (1-10 bytes).

    The matrix is only as wide as the longest encoding in ``values`` (timestamps need 6 bytes, amounts
    2-4), which keeps the padded row that :func:`encode_batch` compacts small.
    """
    v = np.asarray(values, dtype=np.int64)
    zz = ((v << np.int64(1)) ^ (v >> np.int64(63))).view(np.uint64)
    top = int(zz.max()) if len(zz) else 0
    width = max(1, -(-top.bit_length() // 7))
    shifts = (7 * np.arange(width, dtype=np.uint64))[None, :]
    groups = (zz[:, None] >> shifts) & np.uint64(0x7F)
    lens = 1 + ((zz[:, None] >> shifts[:, 1:]) != 0).sum(axis=1)
    more = np.arange(width)[None, :] < (lens - 1)[:, None]
    return (groups | (more.astype(np.uint64) << np.uint64(7))).astype(np.uint8), lens.astype(np.int64)


def _string_table(values: tuple[str | None, ...], union: bool = False) -> tuple[U8, I64]:
    """Encoded bytes of every vocabulary entry (length prefix + UTF-8; union branch index when ``union``)."""
    encoded = []
    for value in values:
        if value is None:
            encoded.append(b"\x00")
            continue
        raw = value.encode("utf-8")
        prefix, plen = zigzag_varints(np.array([len(raw)], dtype=np.int64))
        body = bytes(prefix[0, : plen[0]]) + raw
        encoded.append((b"\x02" if union else b"") + body)
    width = max(len(e) for e in encoded)
    table = np.zeros((len(values), width), dtype=np.uint8)
    for i, e in enumerate(encoded):
        table[i, : len(e)] = np.frombuffer(e, dtype=np.uint8)
    return table, np.array([len(e) for e in encoded], dtype=np.int64)


_TABLES: Final = {
    "merchant_category": _string_table(vocab.CATEGORIES),
    "country": _string_table(vocab.COUNTRIES),
    "currency": _string_table(vocab.CURRENCIES),
    "payment_method": _string_table(vocab.PAYMENT_METHODS),
    "channel": _string_table(vocab.CHANNELS),
    "device_type": _string_table(vocab.DEVICE_TYPES),
    "status": _string_table(vocab.STATUSES),
    "fraud_pattern": _string_table(vocab.FRAUD_PATTERNS, union=True),
}


def _lookup(table: str, codes: npt.NDArray[np.int8]) -> _Piece:
    mat, lens = _TABLES[table]
    idx = codes.astype(np.intp)
    if (lens == mat.shape[1]).all():  # e.g. country and currency codes: constant length, no mask needed
        return _Piece(mat[idx])
    return _Piece(mat[idx], lens[idx])


def _decimal(values: I64, width: int) -> U8:
    """Zero-padded decimal digits of non-negative ``values``, ``width`` ASCII bytes per row."""
    out = np.empty((len(values), width), dtype=np.uint8)
    rest = np.asarray(values, dtype=np.int64)
    for j in range(width - 1, -1, -1):  # one scalar divmod per column is far cheaper than a 2-D broadcast
        rest, digit = np.divmod(rest, 10)
        out[:, j] = digit
    out += _ZERO
    return out


def _fixed_string(prefix: bytes, body: U8) -> _Piece:
    """A string of constant length: its one-byte length prefix, a constant prefix, then ``body``."""
    length = len(prefix) + body.shape[1]
    if length > 63:
        raise ValueError("fixed strings longer than 63 bytes need a multi-byte length prefix")
    head = np.frombuffer(bytes([2 * length]) + prefix, dtype=np.uint8)
    mat = np.empty((body.shape[0], len(head) + body.shape[1]), dtype=np.uint8)
    mat[:, : len(head)] = head
    mat[:, len(head) :] = body
    return _Piece(mat)


def _ip_pieces(ip: I64) -> list[_Piece]:
    """Dotted-quad text of IPv4 integers: a length byte, then each octet's 1-3 digits and the dots."""
    octets = [(ip >> shift) & 255 for shift in (24, 16, 8, 0)]
    widths = [np.asarray(1 + (o >= 10) + (o >= 100), dtype=np.int64) for o in octets]
    text_len = 3 + widths[0] + widths[1] + widths[2] + widths[3]
    pieces = [_Piece((2 * text_len).astype(np.uint8)[:, None])]
    dot = _Piece(np.full((len(ip), 1), ord("."), dtype=np.uint8))
    for i, (o, w) in enumerate(zip(octets, widths, strict=True)):
        pieces.append(_Piece(_OCTET_TEXT[o], w))
        if i < 3:
            pieces.append(dot)
    return pieces


def _octet_text() -> U8:
    """Left-aligned decimal text of 0..255, padded to 3 bytes (the padding is never copied)."""
    table = np.zeros((256, 3), dtype=np.uint8)
    for value in range(256):
        text = str(value).encode("ascii")
        table[value, : len(text)] = np.frombuffer(text, dtype=np.uint8)
    return table


_OCTET_TEXT: Final = _octet_text()


def _hex(values: npt.NDArray[np.uint64], width: int = 16) -> U8:
    shifts = (4 * np.arange(width - 1, -1, -1, dtype=np.uint64))[None, :]
    nibbles = (values[:, None] >> shifts) & np.uint64(0xF)
    return _HEX[nibbles.astype(np.intp)]


def encode_batch(batch: TransactionBatch, schema_id: int) -> EncodedBatch:
    """Encode every transaction of ``batch`` as ``magic + schema_id + Avro body``, all in one buffer."""
    n = len(batch)
    if n == 0:
        return EncodedBatch(b"", np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int64))
    if batch.seq[-1] > MAX_SEQ or batch.customer.max() >= 10**CUSTOMER_DIGITS or batch.merchant.max() >= 10**6:
        raise ValueError("sequence, customer or merchant number exceeds the fixed id widths")
    head = wire.header(schema_id) + bytes([2 * 32]) + f"tx-{batch.run_prefix}-".encode("ascii")
    if len(head) != 5 + 1 + 20:
        raise ValueError(f"run prefix must be 16 characters, got {batch.run_prefix!r}")
    first = np.empty((n, len(head) + SEQ_DIGITS), dtype=np.uint8)
    first[:, : len(head)] = np.frombuffer(head, dtype=np.uint8)
    first[:, len(head) :] = _decimal(batch.seq, SEQ_DIGITS)

    pieces = [
        _Piece(first),
        _Piece(*zigzag_varints(batch.event_time_ms)),
        _fixed_string(b"C", _decimal(batch.customer, CUSTOMER_DIGITS)),
        _fixed_string(b"M", _decimal(batch.merchant, MERCHANT_DIGITS)),
        _lookup("merchant_category", batch.merchant_category),
        _lookup("country", batch.merchant_country),
        _Piece(*zigzag_varints(batch.amount_cents)),
        _lookup("currency", batch.currency),
        _lookup("payment_method", batch.payment_method),
        _lookup("channel", batch.channel),
        _fixed_string(b"dev-", _hex(batch.device)),
        _lookup("device_type", batch.device_type),
        *_ip_pieces(batch.ip),
        _lookup("country", batch.ip_country),
        _lookup("status", batch.status),
        _Piece(batch.is_fraud.astype(np.uint8)[:, None]),
        _lookup("fraud_pattern", batch.fraud_pattern),
    ]
    row_len = np.zeros(n, dtype=np.int64)
    for p in pieces:
        row_len += p.mat.shape[1] if p.lens is None else p.lens
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(row_len, out=offsets[1:])
    # Lay every piece side by side at full width, mark the bytes each row really uses, and let one
    # row-major boolean selection concatenate them: that is exactly the rows' Avro bytes, back to back.
    width = sum(p.mat.shape[1] for p in pieces)
    padded = np.empty((n, width), dtype=np.uint8)
    used = np.ones((n, width), dtype=bool)
    col = 0
    for p in pieces:
        w = p.mat.shape[1]
        padded[:, col : col + w] = p.mat
        if p.lens is not None:
            np.less(np.arange(w)[None, :], p.lens[:, None], out=used[:, col : col + w])
        col += w
    out = padded[used]
    # The key (customer id text) follows its one-byte length prefix in the third piece.
    key_starts = offsets[:-1] + first.shape[1] + pieces[1].lengths(n) + 1
    return EncodedBatch(out.tobytes(), offsets, key_starts)
