"""Typed settings read from a glance-api.conf style file and GLIMPSE_* environment variables."""

from glimpse.config.settings import ConfigError, Settings, load_settings

__all__ = ["ConfigError", "Settings", "load_settings"]
