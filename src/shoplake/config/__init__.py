"""Configuration: environment settings by component, and the streaming pipeline's file, in one model."""

from shoplake.config.settings import (
    DEFAULT_PASSWORDS,
    ConfigError,
    Settings,
    env_for_children,
    get_settings,
)

__all__ = ["DEFAULT_PASSWORDS", "ConfigError", "Settings", "env_for_children", "get_settings"]
