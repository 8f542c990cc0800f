"""A pydantic-settings source that reads glance-api.conf style INI files.

Glance's own option names and sections map onto the settings model: `[DEFAULT]` options onto
top-level fields, `[database]`, `[glance_store]`, `[celery]`, `[scrubber]`, `[keystone_authtoken]`
onto nested models, and every section named by `enabled_backends` onto `stores`. Glance chooses
Keystone through `[paste_deploy] flavor = keystone...`; without an explicit `auth_strategy` that
flavor means `auth_strategy = keystone` here. Anything else is ignored with one warning line per
option, so an operator's existing glance-api.conf loads as it is.
"""

from __future__ import annotations

import contextvars
import logging
import os
from pathlib import Path
from typing import Any

from oslo_config import cfg
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from glimpse.config.notation import parse_dict
from glimpse.config.reserved import RESERVED_STORES

log = logging.getLogger(__name__)

CURRENT_FILE: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "glimpse_config_file", default=None
)
DEFAULT_SECTION = "DEFAULT"
STORES_FIELD = "stores"
PASTE_SECTION = "paste_deploy"


class ConfigFileError(ValueError):
    """The file is not in glance-api.conf's format (oslo.config's parse error, with the line)."""


def read_ini(path: Path) -> dict[str, dict[str, str]]:
    """The file's sections as oslo.config reads them: a value in matching quotes loses them,
    continuation lines join the value, and an option set twice keeps its last value."""
    sections: dict[str, dict[str, list[str]]] = {}
    try:
        cfg.ConfigParser(str(path), sections).parse()
    except cfg.ParseError as exc:
        raise ConfigFileError(str(exc)) from None
    return {
        section: {option: values[-1] for option, values in options.items()}
        for section, options in sections.items()
    }


def _nested_sections(settings_cls: type[BaseSettings]) -> dict[str, type[BaseModel]]:
    nested: dict[str, type[BaseModel]] = {}
    for name, field in settings_cls.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            nested[name] = annotation
    return nested


def _strategy_from_flavor(sections: dict[str, dict[str, str]]) -> str | None:
    """Glance's `flavor = keystone` (or keystone+caching, ...) selects Keystone auth, unless the
    file names an auth_strategy itself."""
    if "auth_strategy" in sections.get(DEFAULT_SECTION, {}):
        return None
    flavor = sections.get(PASTE_SECTION, {}).get("flavor", "")
    return "keystone" if flavor.strip().lower().startswith("keystone") else None


def _store_ids(sections: dict[str, dict[str, str]]) -> set[str]:
    """The sections that configure stores. A value that does not parse names none here; the
    settings model reports it, naming the option."""
    raw = os.environ.get("GLIMPSE_ENABLED_BACKENDS") or sections.get(DEFAULT_SECTION, {}).get(
        "enabled_backends", ""
    )
    try:
        backends = parse_dict(raw)
    except ValueError:
        return set()
    return set(backends) if isinstance(backends, dict) else set()


class GlanceIniSource(PydanticBaseSettingsSource):
    """Reads the file named by CURRENT_FILE (set by load_settings); nothing when unset."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        self.path = CURRENT_FILE.get()

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:  # noqa: ARG002 -- pydantic-settings API
        # Required by the base class; unused because __call__ builds the whole mapping at once.
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        if self.path is None:
            return {}
        sections = read_ini(self.path)
        nested = _nested_sections(self.settings_cls)
        store_ids = _store_ids(sections)
        top_level = set(self.settings_cls.model_fields) - set(nested) - {STORES_FIELD}
        result: dict[str, Any] = {}
        strategy = _strategy_from_flavor(sections)
        if strategy is not None:
            result["auth_strategy"] = strategy
        for section, options in sections.items():
            if section == DEFAULT_SECTION:
                known: set[str] = top_level
                target = result
            elif section in nested:
                known = set(nested[section].model_fields)
                target = result.setdefault(section, {})
            elif section in store_ids or section in RESERVED_STORES:
                from glimpse.config.settings import StoreOptions  # noqa: PLC0415 -- cycle

                known = set(StoreOptions.model_fields)
                target = result.setdefault(STORES_FIELD, {}).setdefault(section, {})
            else:
                known = set()
                target = {}
            for option, value in options.items():
                if option in known:
                    target[option] = value
                else:
                    log.warning("Ignoring unknown option [%s] %s in %s", section, option, self.path)
        return result


def describe_errors(exc: ValidationError, path: Path | None) -> str:
    """One line per invalid option: section, option, file and what is wrong."""
    origin = f"in {path}" if path is not None else "in the environment"
    nested = set(_nested_sections_names())
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


def _nested_sections_names() -> list[str]:
    from glimpse.config.settings import Settings  # noqa: PLC0415 -- cycle

    return list(_nested_sections(Settings))
