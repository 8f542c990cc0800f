"""Loaded by the schemathesis CLI (SCHEMATHESIS_HOOKS): Glance's JSON-patch media types carry
JSON, which schemathesis only knows how to send under JSON's own names."""

from __future__ import annotations

import schemathesis

from glimpse.domain.patch import PATCH_MEDIA_TYPES

schemathesis.serializer.alias(list(PATCH_MEDIA_TYPES), "application/json")
