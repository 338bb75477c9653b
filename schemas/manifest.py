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


def build_status(failed_parts: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The manifest's `partial` and `failed_parts` fields. A build whose parts failed still
    publishes the shards of the parts that did not (the choice is documented in README:
    "Failed parts"), and says so here: each failed part as {stage, part, rows}, rows being
    the input items it held that no shard, ledger row or later stage has seen."""
    failed = sorted(
        ({"stage": f["stage"], "part": f["part"], "rows": f["rows"]} for f in failed_parts or []),
        key=lambda f: (f["stage"], f["part"]),
    )
    return {"partial": bool(failed), "failed_parts": failed}
