"""Keystone's health check: its API answers its version document (the application loaded,
configuration and backends set up)."""

import json
import sys
import urllib.request

URL = "http://127.0.0.1:5000/v3"

try:
    with urllib.request.urlopen(URL, timeout=5) as response:
        version = json.load(response)["version"]
except (OSError, ValueError, KeyError) as exc:
    sys.exit(f"keystone: {URL} failed: {exc!r}")
if version.get("status") != "stable":
    sys.exit(f"keystone: unexpected version document {version!r}")
