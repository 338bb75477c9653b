"""The shard manifest: its JSON Schema ships beside this module."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

MANIFEST_SCHEMA_VERSION = 1


def manifest_schema() -> dict[str, Any]:
    return json.loads(resources.files("schemas").joinpath("manifest.schema.json").read_text())


def validate_manifest(manifest: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError when the manifest breaks the contract."""
    import jsonschema

    jsonschema.validate(manifest, manifest_schema())
