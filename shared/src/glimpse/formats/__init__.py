"""What image data really is: disk-format detection and the safety checks on it."""

from glimpse.formats.inspection import (
    INSPECTABLE_FORMATS,
    Inspection,
    StreamInspector,
    inspect_file,
    inspected_container,
)

__all__ = [
    "INSPECTABLE_FORMATS",
    "Inspection",
    "StreamInspector",
    "inspect_file",
    "inspected_container",
]
