"""Load the versioned Avro schema files shipped in ``contracts/schemas``.

The ``.avsc`` files are the contract between the producer, the registry and every consumer (Spark, tests).
Keeping them as files rather than Python dicts lets the registry, reviewers and non-Python tools read the
exact same text; this module only finds, parses and validates them.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any, Final

import fastavro

SCHEMA_DIR: Final = Path(__file__).resolve().parent / "schemas"
TRANSACTION_SCHEMA: Final = "transaction-v1"


class SchemaFileError(ValueError):
    """A schema file is missing or is not a valid Avro schema."""


def schema_path(name: str = TRANSACTION_SCHEMA) -> Path:
    """Path of ``schemas/<name>.avsc``; raises :class:`SchemaFileError` when it does not exist."""
    path = SCHEMA_DIR / f"{name}.avsc"
    if not path.is_file():
        available = ", ".join(sorted(p.stem for p in SCHEMA_DIR.glob("*.avsc")))
        raise SchemaFileError(f"no schema {name!r} in {SCHEMA_DIR} (available: {available})")
    return path


def schema_text(name: str = TRANSACTION_SCHEMA) -> str:
    """The schema file's text exactly as it is registered."""
    return schema_path(name).read_text(encoding="utf-8")


@cache
def schema_dict(name: str = TRANSACTION_SCHEMA) -> dict[str, Any]:
    """The schema as a JSON dict (validated with fastavro so a broken file fails here, not in a consumer)."""
    path = schema_path(name)
    try:
        raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        fastavro.parse_schema(raw)
    except (ValueError, fastavro.schema.SchemaParseException) as exc:
        raise SchemaFileError(f"{path} is not a valid Avro schema: {exc}") from exc
    return raw


@cache
def parsed_schema(name: str = TRANSACTION_SCHEMA) -> Any:
    """fastavro's parsed form of the schema, for ``schemaless_writer`` / ``schemaless_reader``."""
    return fastavro.parse_schema(schema_dict(name))


def field_names(name: str = TRANSACTION_SCHEMA) -> tuple[str, ...]:
    """The record's field names in declaration order (the Avro binary order)."""
    return tuple(str(f["name"]) for f in schema_dict(name)["fields"])
