"""Build a streaming view from a parsed streaming file, validated as ``conf/streaming.toml`` would be."""

from __future__ import annotations

from typing import Any

from shoplake.config import Settings
from shoplake.config.settings import parse_streaming
from shoplake.pipeline.config import StreamingConfig, load_streaming_config


def resolve(raw: dict[str, Any], settings: Settings) -> StreamingConfig:
    return load_streaming_config(settings.model_copy(update={"streaming": parse_streaming(raw, "test.toml")}))
