"""What every console entry point does first."""

from __future__ import annotations

import os
import sys

from glimpse.config import ConfigError, Settings, load_settings
from glimpse.logs import setup_logging


def settings_or_exit(prog: str, config_file: str | os.PathLike[str] | None) -> Settings:
    """Set up logging and build the settings; a bad configuration ends the process with 2."""
    setup_logging()
    try:
        settings = load_settings(config_file)
    except ConfigError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)  # noqa: T201 -- start-up failure
        raise SystemExit(2) from None
    setup_logging(debug=settings.debug)
    return settings
