"""Builds the settings at an entry point: finds the config file, reads it through the settings'
sources and turns validation errors into one line per option (section, option, file)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from glimpse.config.settings import Settings
from glimpse.config.sources import (
    CURRENT_FILE,
    DEFAULT_SECTION,
    STORES_FIELD,
    ConfigFileError,
)

CONFIG_ENV = "GLIMPSE_CONFIG"


class ConfigError(Exception):
    """Start-up stops: the configuration names an invalid value."""


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The config file: an explicit --config-file wins over GLIMPSE_CONFIG."""
    value = explicit or os.environ.get(CONFIG_ENV)
    return Path(value) if value else None


def load_settings(config_file: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:  # noqa: ANN401
    """Build the settings at an entry point; raise ConfigError naming the option and the file."""
    path = config_path(config_file)
    if path is not None and not path.is_file():
        msg = f"config file {path} does not exist"
        raise ConfigError(msg)
    token = CURRENT_FILE.set(path)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc, path)) from None
    except ConfigFileError as exc:
        msg = f"config file {path} cannot be read: {exc}"
        raise ConfigError(msg) from None
    finally:
        CURRENT_FILE.reset(token)


def describe_errors(exc: ValidationError, path: Path | None) -> str:
    """One line per invalid option: section, option, file and what is wrong."""
    origin = f"in {path}" if path is not None else "in the environment"
    nested = {
        name
        for name, field in Settings.model_fields.items()
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
    }
    lines = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        message = error["msg"].removeprefix("Value error, ")
        if not loc:
            # A rule spanning options: the message itself names them.
            lines.append(f"Invalid configuration {origin}: {message}")
            continue
        if loc[0] == STORES_FIELD and len(loc) >= 3:  # noqa: PLR2004 -- stores.<id>.<option>
            where = f"[{loc[1]}] {loc[2]}"
        elif loc[0] in nested and len(loc) >= 2:  # noqa: PLR2004 -- <section>.<option>
            where = f"[{loc[0]}] {loc[1]}"
        else:
            where = f"[{DEFAULT_SECTION}] {loc[0]}"
        lines.append(f"Invalid configuration value for {where} {origin}: {message}")
    return "\n".join(lines)
