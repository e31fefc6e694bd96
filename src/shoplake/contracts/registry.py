"""Register the transaction schema in the Schema Registry under BACKWARD compatibility.

Registration is idempotent (the registry returns the existing id for an identical schema) and refuses an
incompatible change *before* anything is produced with it: a producer that silently registered a breaking
schema would strand every consumer, so :func:`ensure_schema` checks compatibility explicitly and raises
:class:`IncompatibleSchemaError` naming the subject.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from shoplake.config import Settings
from shoplake.contracts.schemas import schema_text

COMPATIBILITY: Final = "BACKWARD"
_SUBJECT_NOT_FOUND: Final = 40401
_HTTP_CONFLICT: Final = 409
_HTTP_UNPROCESSABLE: Final = 422


class RegistryUnavailableError(RuntimeError):
    """The Schema Registry did not answer (down, wrong URL, timeout)."""


class IncompatibleSchemaError(ValueError):
    """A schema would break the subject's compatibility rule and was not registered."""


@dataclass(frozen=True)
class RegisteredSchema:
    subject: str
    schema_id: int
    compatibility: str


def registry_client(settings: Settings, timeout: float = 5.0) -> SchemaRegistryClient:
    """A client with a bounded HTTP timeout and a single retry, so a dead registry fails in seconds."""
    return SchemaRegistryClient(
        {"url": settings.registry.url, "timeout": timeout, "max.retries": 1, "retries.wait.ms": 200}
    )


def check_schema_registry(settings: Settings, timeout: float = 5.0) -> list[str]:
    """Health check: the registry's subjects, or :class:`RegistryUnavailableError` within ``timeout``."""
    client = registry_client(settings, timeout)
    try:
        return sorted(str(s) for s in client.get_subjects())
    except SchemaRegistryError as exc:
        raise RegistryUnavailableError(
            f"Schema Registry at {settings.registry.url} answered with an error: {exc}"
        ) from exc
    except Exception as exc:  # httpx connection/timeout errors have no common public base class here
        raise RegistryUnavailableError(
            f"Schema Registry at {settings.registry.url} is unreachable ({type(exc).__name__}: {exc}); "
            "start it with `shoplake up registry` or fix SCHEMA_REGISTRY_URL"
        ) from exc


def ensure_schema(
    settings: Settings,
    schema_str: str | None = None,
    subject: str | None = None,
    client: SchemaRegistryClient | None = None,
) -> RegisteredSchema:
    """Set BACKWARD compatibility on ``subject`` and register ``schema_str``; return its id.

    Defaults are the transaction schema file and ``settings.schema_subject``. Re-registering the same
    schema returns the same id; an incompatible one raises :class:`IncompatibleSchemaError` and leaves the
    subject untouched.
    """
    subject = subject or settings.schema_subject
    schema = Schema(schema_str if schema_str is not None else schema_text(), "AVRO")
    client = client or registry_client(settings)
    try:
        exists = _subject_exists(client, subject)
        client.set_compatibility(subject_name=subject, level=COMPATIBILITY)
        if exists and not client.test_compatibility(subject, schema):
            raise IncompatibleSchemaError(
                f"schema is not {COMPATIBILITY}-compatible with the latest version of subject {subject!r}: "
                "add defaults to new fields and do not remove or retype existing ones"
            )
        schema_id = int(client.register_schema(subject, schema))
    except SchemaRegistryError as exc:
        if exc.http_status_code in (_HTTP_CONFLICT, _HTTP_UNPROCESSABLE):
            raise IncompatibleSchemaError(f"registry refused the schema for subject {subject!r}: {exc}") from exc
        raise RegistryUnavailableError(f"Schema Registry error for subject {subject!r}: {exc}") from exc
    except IncompatibleSchemaError:
        raise
    except Exception as exc:
        raise RegistryUnavailableError(
            f"Schema Registry at {settings.registry.url} is unreachable ({type(exc).__name__}: {exc})"
        ) from exc
    return RegisteredSchema(subject=subject, schema_id=schema_id, compatibility=COMPATIBILITY)


def registered_schema_str(client: SchemaRegistryClient, schema_id: int) -> str:
    """The schema text the registry holds for ``schema_id`` (what consumers decode with)."""
    schema: Any = client.get_schema(schema_id)
    return str(schema.schema_str)


def _subject_exists(client: SchemaRegistryClient, subject: str) -> bool:
    try:
        client.get_latest_version(subject)
    except SchemaRegistryError as exc:
        if exc.error_code == _SUBJECT_NOT_FOUND or exc.http_status_code == 404:
            return False
        raise
    return True
