"""Stable task names: messages carry these and ids only, never objects."""

from typing import Final

PING: Final = "glimpse.health.ping"
IMPORT: Final = "glimpse.image.import"
