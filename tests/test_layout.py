"""The code's layout as a contract: what each package under pipeline/ may import, and what
every stage package exposes."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from pipeline.core.ledger import STAGES, STEPS

ROOT = Path(__file__).resolve().parents[1]
PIPELINE = ROOT / "pipeline"
STAGE_PACKAGES = ("harvest", "crawl", "extract", "filter", "dedup", "shards", "report", "overlap")

# (importing module, imported module) pairs allowed beyond the rules, each with its reason.
EXCEPTIONS = {
    # The root package holds only __version__, which the manifest records as code_version.
    ("pipeline.shards.writer", "pipeline"): "code version for the manifest",
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at module level or inside functions, made absolute."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            # `from pipeline import harvest` imports the package pipeline.harvest
            for alias in node.names:
                candidate = f"{mod}.{alias.name}"
                if (ROOT / candidate.replace(".", "/")).is_dir() or (
                    ROOT / (candidate.replace(".", "/") + ".py")
                ).is_file():
                    found.add(candidate)
    return found


def _owner(module: str) -> str | None:
    """The pipeline package a module belongs to: a stage, "core", or None (cli, root)."""
    parts = module.split(".")
    if parts[0] != "pipeline" or len(parts) < 2:
        return None
    if parts[1] in STAGE_PACKAGES or parts[1] == "core":
        return parts[1]
    return None


def _is_project(module: str) -> bool:
    return module.split(".")[0] in {"pipeline", "schemas", "flows", "demo", "tests"}


def _violations() -> list[str]:
    bad = []
    for path in sorted(PIPELINE.rglob("*.py")):
        me = _module_name(path)
        owner = _owner(me)
        for imp in sorted(_imports(path)):
            top = imp.split(".")[0]
            if top == "prefect" or top == "prefect_dask":
                bad.append(f"{me} imports {imp}: no Prefect below pipeline/")
                continue
            if me == "pipeline.cli":
                continue  # the CLI runs flows and the demo, importing them inside commands
            if top in {"flows", "demo", "tests"}:
                bad.append(f"{me} imports {imp}: pipeline/ never imports {top}/")
                continue
            if not _is_project(imp) or top == "schemas":
                continue
            if (me, imp) in EXCEPTIONS:
                continue
            if owner is None:
                continue  # pipeline/__init__.py
            theirs = _owner(imp)
            if theirs == owner:
                continue
            if theirs == "core":
                continue
            if owner == "core":
                bad.append(f"{me} imports {imp}: core imports only core and schemas")
            else:
                bad.append(f"{me} imports {imp}: a stage imports only itself, core and schemas")
    return bad


def test_import_graph() -> None:
    assert _violations() == []


def test_the_walk_sees_imports() -> None:
    """The checker itself: it finds lazy, relative and package imports."""
    imports = _imports(PIPELINE / "cli.py")
    assert "pipeline.harvest" in imports  # `from pipeline import harvest` inside a command
    assert "flows.build" in imports or any(i.startswith("flows") for i in imports)
    assert "pipeline.core.ngrams" in _imports(PIPELINE / "filter" / "wiki_strip.py")
    assert _owner("pipeline.dedup.lsh") == "dedup" and _owner("pipeline.cli") is None


def test_schemas_import_nothing_of_the_pipeline() -> None:
    for path in sorted((ROOT / "schemas").rglob("*.py")):
        assert not any(i.split(".")[0] in {"pipeline", "flows", "demo"} for i in _imports(path))


@pytest.mark.parametrize("name", STAGE_PACKAGES)
def test_stage_package_says_what_it_does_and_exposes_its_driver(name: str) -> None:
    pkg = importlib.import_module(f"pipeline.{name}")
    assert pkg.__doc__ and len(pkg.__doc__.strip().splitlines()) >= 3
    assert pkg.STAGE == name and isinstance(pkg.VERSION, int)
    # Stages whose parts are independent expose `run_part` (one part, with its done marker);
    # dedup, shards, report and overlap work over all parts at once and expose `run`.
    driver = "run" if name in ("dedup", "shards", "report", "overlap") else "run_part"
    assert callable(getattr(pkg, driver))
    for export in getattr(pkg, "__all__", []):
        assert hasattr(pkg, export), f"pipeline.{name}.__all__ names missing {export}"


def test_every_step_with_a_marker_is_known() -> None:
    assert set(STAGES) <= set(STEPS) and set(STEPS.values()) == set(STAGES)
    from pipeline import dedup, harvest

    assert STEPS[harvest.FILE_STAGE] == "harvest"
    assert STEPS[dedup.SIGNATURE_STAGE] == "dedup"
    from pipeline.core.stage import run_marked

    with pytest.raises(ValueError, match="unknown step"):
        run_marked(Path("/nonexistent"), "not_a_step", "p", [], "", 0, lambda: None)  # type: ignore[arg-type,return-value]
