"""The Confluent wire format: one magic byte ``0``, a 4-byte big-endian schema id, then the Avro body.

Every producer and consumer in the platform frames and unframes messages with these two functions, so the
format is implemented (and tested) exactly once. Spark's ``from_avro`` does not strip the prefix itself,
which is why consumers need :func:`decode` (or its 5-byte offset) too.
"""

from __future__ import annotations

import io
import struct
from typing import Any, Final

import fastavro

MAGIC_BYTE: Final = 0
HEADER_SIZE: Final = 5
_HEADER: Final = struct.Struct(">bI")
MAX_SCHEMA_ID: Final = 2**31 - 1


class WireFormatError(ValueError):
    """A message is not a Confluent-framed record (empty, too short, wrong magic byte, or no body)."""


def header(schema_id: int) -> bytes:
    """The 5-byte prefix for ``schema_id`` (shared by :func:`encode` and the vectorised producer)."""
    if isinstance(schema_id, bool) or not isinstance(schema_id, int) or not 0 <= schema_id <= MAX_SCHEMA_ID:
        raise WireFormatError(f"schema id must be an integer in 0..{MAX_SCHEMA_ID}, got {schema_id!r}")
    return _HEADER.pack(MAGIC_BYTE, schema_id)


def encode(schema_id: int, payload: bytes) -> bytes:
    """Frame an Avro-encoded ``payload`` with the magic byte and ``schema_id``."""
    if not payload:
        raise WireFormatError("refusing to frame an empty Avro body (no Avro record encodes to zero bytes here)")
    return header(schema_id) + bytes(payload)


def decode(message: bytes | bytearray | memoryview | None) -> tuple[int, bytes]:
    """Split a framed message into ``(schema_id, avro_body)``; raise :class:`WireFormatError` when malformed."""
    if message is None or len(message) == 0:
        raise WireFormatError("empty message: expected a 5-byte Confluent header followed by an Avro body")
    data = bytes(message)
    if len(data) < HEADER_SIZE:
        raise WireFormatError(f"message too short ({len(data)} bytes): the Confluent header alone is 5 bytes")
    magic, schema_id = _HEADER.unpack_from(data)
    if magic != MAGIC_BYTE:
        raise WireFormatError(f"wrong magic byte {data[0]:#04x} (expected 0x00): not Confluent-framed Avro")
    if len(data) == HEADER_SIZE:
        raise WireFormatError(f"truncated message: header for schema id {schema_id} but no Avro body")
    return schema_id, data[HEADER_SIZE:]


def decode_record(message: bytes | bytearray | memoryview | None, schema: Any) -> tuple[int, dict[str, Any]]:
    """Unframe and Avro-decode one message with a fastavro-parsed ``schema``.

    A body that ends before the record does (a truncated message) or that has bytes left over after it (a
    different schema) is a :class:`WireFormatError`, not a half-filled record.
    """
    schema_id, body = decode(message)
    stream = io.BytesIO(body)
    try:
        record = fastavro.schemaless_reader(stream, schema, None)
    except (EOFError, StopIteration, IndexError, struct.error) as exc:
        raise WireFormatError(
            f"truncated Avro body ({len(body)} bytes) for schema id {schema_id}: {type(exc).__name__}"
        ) from exc
    except UnicodeDecodeError as exc:
        raise WireFormatError(f"corrupt Avro body for schema id {schema_id}: {exc}") from exc
    if stream.tell() != len(body):
        raise WireFormatError(
            f"{len(body) - stream.tell()} trailing bytes after the record: body does not match schema id {schema_id}"
        )
    if not isinstance(record, dict):
        raise WireFormatError(f"schema id {schema_id} does not describe a record")
    return schema_id, record
