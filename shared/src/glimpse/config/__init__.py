"""Typed settings read from a glance-api.conf style file and GLIMPSE_* environment variables."""

from glimpse.config.loader import ConfigError, load_settings
from glimpse.config.settings import Settings

__all__ = ["ConfigError", "Settings", "load_settings"]
