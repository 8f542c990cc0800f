"""A pydantic-settings source that reads glance-api.conf style INI files.

Glance's own option names and sections map onto the settings model: `[DEFAULT]` options onto
top-level fields, `[database]`, `[glance_store]`, `[celery]`, `[scrubber]`, `[keystone_authtoken]`
onto nested models, and every other section onto `stores` (Settings keeps those that
enabled_backends names, so that value is parsed once, by the model). Glance chooses
Keystone through `[paste_deploy] flavor = keystone...`; without an explicit `auth_strategy` that
flavor means `auth_strategy = keystone` here. Anything else is ignored with one warning line per
option, so an operator's existing glance-api.conf loads as it is.
"""

from __future__ import annotations

import contextvars
import logging
import typing
from pathlib import Path
from typing import Any

from oslo_config import cfg
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

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


def _store_options(settings_cls: type[BaseSettings]) -> type[BaseModel]:
    """The model of one store section: the values of the `stores` mapping."""
    annotation = settings_cls.model_fields[STORES_FIELD].annotation
    return typing.cast("type[BaseModel]", typing.get_args(annotation)[1])


def _strategy_from_flavor(sections: dict[str, dict[str, str]]) -> str | None:
    """Glance's `flavor = keystone` (or keystone+caching, ...) selects Keystone auth, unless the
    file names an auth_strategy itself."""
    if "auth_strategy" in sections.get(DEFAULT_SECTION, {}):
        return None
    flavor = sections.get(PASTE_SECTION, {}).get("flavor", "")
    return "keystone" if flavor.strip().lower().startswith("keystone") else None


class GlanceIniSource(PydanticBaseSettingsSource):
    """Reads the file named by CURRENT_FILE (set by load_settings); nothing when unset."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        self.path = CURRENT_FILE.get()

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:  # noqa: ARG002
        # Required by the base class; unused because __call__ builds the whole mapping at once.
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        if self.path is None:
            return {}
        sections = read_ini(self.path)
        nested = _nested_sections(self.settings_cls)
        store_fields = set(_store_options(self.settings_cls).model_fields)
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
            else:
                # A store's section if enabled_backends names it (Settings drops the others).
                known = store_fields
                target = result.setdefault(STORES_FIELD, {}).setdefault(section, {})
            for option, value in options.items():
                if option in known:
                    target[option] = value
                else:
                    log.warning("Ignoring unknown option [%s] %s in %s", section, option, self.path)
        return result
