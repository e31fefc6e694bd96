"""Value types shared by the settings sections: each validates and says what it expects in its message."""

from __future__ import annotations

import re
from typing import Annotated, Any, Final
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr

_TOPIC: Final = re.compile(r"[A-Za-z0-9._-]{1,249}")
_IDENTIFIER: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,62}")
_NAME: Final = re.compile(r"[A-Za-z0-9._-]+")
_INTERVAL: Final = re.compile(r"(\d+) (second|seconds|minute|minutes|hour|hours)")
_SIZE: Final = re.compile(r"[1-9][0-9]*[kmg]")
_UNIT_SECONDS: Final = {"second": 1, "minute": 60, "hour": 3600}


def env(
    name: str,
    default: Any,
    doc: str,
    *,
    shown: str | None = None,
    ge: float | None = None,
    le: float | None = None,
    gt: float | None = None,
) -> Any:
    """A setting read from the environment variable ``name``, within the bounds given; ``shown`` is the
    default the docs print when the real one is derived or found at run time."""
    extra: dict[str, Any] | None = {"shown": shown} if shown is not None else None
    return Field(default=default, validation_alias=name, description=doc, json_schema_extra=extra, ge=ge, le=le, gt=gt)


def env_text(value: Any) -> str:
    """A setting's value as its environment variable would spell it (secrets revealed: mask before)."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return ",".join(value)
    return "" if value is None else str(value)


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL such as http://localhost:8081")
    try:
        _ = parts.port
    except ValueError as exc:
        raise ValueError("has an invalid port") from exc
    return value.rstrip("/")


def _optional_http_url(value: str) -> str:
    return _http_url(value) if value else ""


def _matching(pattern: re.Pattern[str], hint: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(hint)
        return value

    return AfterValidator(check)


def _boolean(value: object) -> object:
    """Environment booleans: true/false, 1/0, yes/no, on/off (any case); empty is false."""
    return False if isinstance(value, str) and not value.strip() else value


def _comma_list(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def _emails(value: tuple[str, ...]) -> tuple[str, ...]:
    bad = [a for a in value if a.count("@") != 1 or not all(a.split("@")) or " " in a]
    if bad:
        raise ValueError(f"not e-mail addresses: {', '.join(bad)}")
    return value


def seconds(interval: str) -> int:
    """Seconds of a validated interval such as ``"5 minutes"``."""
    found = _INTERVAL.fullmatch(interval)
    if found is None:
        raise ValueError(f"{interval!r} is not an interval like '5 seconds' or '2 hours'")
    return int(found.group(1)) * _UNIT_SECONDS[found.group(2).rstrip("s")]


def size_bytes(size: str) -> int:
    """Bytes of a validated size such as ``"32m"``."""
    unit: int = 1024 ** ("kmg".index(size[-1]) + 1)
    return int(size[:-1]) * unit


def _port(value: object) -> int:
    try:
        port = int(str(value).strip())
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise ValueError("must be a TCP port (1-65535)")
    return port


def _servers(value: str) -> str:
    for server in value.split(","):
        host, _, port = server.strip().rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("expected host:port[,host:port...]")
    return value


Port = Annotated[int, BeforeValidator(_port)]
Servers = Annotated[str, AfterValidator(_servers)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
OptionalHttpUrl = Annotated[str, AfterValidator(_optional_http_url)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
EnvBool = Annotated[bool, BeforeValidator(_boolean)]
Emails = Annotated[tuple[str, ...], BeforeValidator(_comma_list), AfterValidator(_emails)]
Topic = Annotated[str, _matching(_TOPIC, "letters, digits, '.', '_' and '-' only (max 249)")]
Identifier = Annotated[str, _matching(_IDENTIFIER, "must be a plain identifier (letters, digits, '_')")]
LowerIdentifier = Annotated[str, _matching(re.compile(r"[a-z_][a-z0-9_]{0,62}"), "must be a lower-case SQL identifier")]
MlflowName = Annotated[str, _matching(_NAME, "letters, digits, '-', '_' and '.' only")]


def _positive_interval(value: str) -> str:
    if not _INTERVAL.fullmatch(value) or seconds(value) < 1:
        raise ValueError("must be an interval like '5 seconds', '30 minutes' or '2 hours', at least 1 second")
    return value


Interval = Annotated[str, AfterValidator(_positive_interval)]
Size = Annotated[str, _matching(_SIZE, "must be a size such as '512m' or '2g'")]
