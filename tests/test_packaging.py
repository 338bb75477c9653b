"""A plain `pip install .` into a fresh venv, with the pip that `python -m venv` bundles (not
upgraded), gives a working install: every module of the shipped packages imports, trafilatura
extracts text, `pip check` is clean and the `webtext` entry point starts.

Why the bundled pip: pip < 23.3 does not normalize extra names (PEP 685), so a dependency that
asks for `lxml[html_clean]` (jusText) gets nothing from lxml 6, whose extra is `html-clean`;
the install "succeeds" and `import trafilatura` fails. The upgraded pip of the dev venv hides
that. The install reaches only the package index pip is configured with; pip's cache is left
on, so a rerun takes seconds of resolving plus the install (1-3 min on a cold cache).

The modules are discovered, never listed: every .py file under each top-level package of the
work tree, plus whatever `pkgutil.walk_packages` finds in the installed copy. A module that is
in the tree but not installed (a subpackage missing from pyproject's package list) fails as a
ModuleNotFoundError.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
# Top-level directories with an __init__.py that are not shipped in the wheel.
NOT_SHIPPED = {"tests", "benchmarks"}

# Runs inside the fresh venv: argv[1] is a JSON list of top-level packages, argv[2] a JSON list
# of module names found in the work tree. Prints one JSON object on its last line.
IMPORT_ALL = r'''
import ast, importlib, importlib.util, json, pkgutil, sys, traceback

tops = json.loads(sys.argv[1])
names = set(json.loads(sys.argv[2]))
failed, skipped = {}, {}


def err(exc):
    tb = traceback.format_exception_only(type(exc), exc)
    return "".join(tb).strip()[-1500:]


for top in tops:
    try:
        pkg = importlib.import_module(top)
    except BaseException as exc:
        failed[top] = err(exc)
        continue
    names.add(top)
    if hasattr(pkg, "__path__"):
        def onerror(name):
            failed.setdefault(name, err(sys.exc_info()[1]))
        for info in pkgutil.walk_packages(pkg.__path__, top + ".", onerror=onerror):
            names.add(info.name)


def guarded(name):
    """True if the module's top level runs its program only under `if __name__ == "__main__"`."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return True  # not found: let the import below report it
    tree = ast.parse(open(spec.origin, encoding="utf-8").read())
    for node in tree.body:
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test) and (
            "__name__" in ast.unparse(node.test)
        ):
            return True
    return False


imported = []
for name in sorted(names):
    if name in failed:
        continue
    # A `__main__` module is imported too: importlib imports it under its dotted name, so a
    # guarded program (`if __name__ == "__main__": sys.exit(main())`) does not run. Only a
    # `__main__` without that guard is skipped, since importing it would run the program
    # (parse this process's argv, start a crawl) instead of checking that it imports.
    if name.rsplit(".", 1)[-1] == "__main__":
        try:
            if not guarded(name):
                skipped[name] = "no `if __name__ == '__main__'` guard: importing would run it"
                continue
        except BaseException as exc:
            failed[name] = err(exc)
            continue
    try:
        importlib.import_module(name)
        imported.append(name)
    except BaseException as exc:  # SystemExit too: a module that exits on import is broken
        failed[name] = err(exc)

extraction = None
try:
    import trafilatura

    para = (
        "The committee met on Tuesday to review the budget for the coming year, and after a "
        "long discussion it agreed to fund the new library wing in full. "
    )
    html = (
        "<html><head><title>Budget news</title></head><body>"
        "<nav><a href='/'>Home</a> <a href='/about'>About</a></nav>"
        "<article><h1>Budget news</h1>" + "".join(f"<p>{para * 3}</p>" for _ in range(4))
        + "</article><footer>Copyright</footer></body></html>"
    )
    text = trafilatura.extract(html)  # default options: the jusText/readability fallbacks run
    if not text or "library wing" not in text:
        extraction = f"trafilatura.extract returned {text!r}"
except BaseException as exc:
    extraction = err(exc)

print(json.dumps({"imported": imported, "failed": failed, "skipped": skipped,
                  "extraction": extraction}))
'''


def _run(
    cmd: list[str], timeout: float, check: bool = False, **kw: Any
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=timeout, **kw)


def _tail(p: subprocess.CompletedProcess[str], n: int = 4000) -> str:
    return f"exit {p.returncode}\n--- stdout\n{p.stdout[-n:]}\n--- stderr\n{p.stderr[-n:]}"


def _copy_work_tree(dest: Path) -> None:
    """Tracked files plus new files not yet added (not ignored), as they are in the work tree,
    so build artifacts land in the copy and never in the repo."""
    out = _run(
        ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        timeout=60,
        check=True,
    ).stdout
    for rel in filter(None, out.split("\0")):
        src = REPO / rel
        if not src.is_file():  # deleted or moved in the work tree, not yet staged
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)


def _tree_modules(src: Path) -> tuple[list[str], list[str]]:
    """Top-level packages of the tree (directories with an __init__.py) and every module under
    them, by file path."""
    tops = sorted(
        d.name
        for d in src.iterdir()
        if d.is_dir() and (d / "__init__.py").is_file() and d.name not in NOT_SHIPPED
    )
    modules = []
    for top in tops:
        for f in (src / top).rglob("*.py"):
            parts = list(f.relative_to(src).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            if all(p.isidentifier() for p in parts):
                modules.append(".".join(parts))
    return tops, sorted(modules)


def _clean_env(home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PIP_USER")
    }
    env.update(
        PYTHONNOUSERSITE="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",  # pip must not phone anywhere but the index
        PREFECT_HOME=str(home / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
    )
    return env


@pytest.mark.slow
def test_plain_pip_install_with_bundled_pip_imports_everything() -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not available: cannot list the repository's files to install")
    base_python = getattr(sys, "_base_executable", None) or sys.executable

    with tempfile.TemporaryDirectory(prefix="webtext-pkg-", ignore_cleanup_errors=True) as tmp:
        tmpd = Path(tmp)
        src, venv, work = tmpd / "src", tmpd / "venv", tmpd / "work"
        src.mkdir()
        work.mkdir()
        _copy_work_tree(src)
        assert (src / "pyproject.toml").is_file(), "pyproject.toml not among the listed files"
        tops, tree_modules = _tree_modules(src)
        assert "pipeline" in tops, f"no pipeline package in the tree: {tops}"
        env = _clean_env(tmpd)

        # The venv pip is the one ensurepip bundles with this Python, never upgraded.
        p = _run([base_python, "-m", "venv", str(venv)], timeout=300, env=env)
        assert p.returncode == 0, f"python -m venv failed\n{_tail(p)}"
        py = venv / "bin" / "python"
        bundled = _run(
            [base_python, "-c", "import ensurepip; print(ensurepip.version())"],
            timeout=60,
            env=env,
        ).stdout.strip()
        pip_version = _run(
            [str(py), "-c", "import pip; print(pip.__version__)"], timeout=60, env=env
        ).stdout.strip()
        assert pip_version == bundled, f"venv pip {pip_version} is not the bundled {bundled}"

        t0 = time.monotonic()
        p = _run([str(py), "-m", "pip", "install", str(src)], timeout=1800, env=env, cwd=work)
        install_s = time.monotonic() - t0
        print(f"pip {pip_version}: `pip install .` took {install_s:.0f} s")
        assert p.returncode == 0, f"pip install failed\n{_tail(p)}"

        p = _run([str(py), "-m", "pip", "check"], timeout=300, env=env, cwd=work)
        assert p.returncode == 0, f"pip check found broken requirements\n{_tail(p)}"

        # Run from an empty directory so the installed copy is imported, not the source tree.
        script = work / "import_all.py"
        script.write_text(IMPORT_ALL)
        p = _run(
            [str(py), str(script), json.dumps(tops), json.dumps(tree_modules)],
            timeout=900,
            env=env,
            cwd=work,
        )
        assert p.returncode == 0 and p.stdout.strip(), f"import script crashed\n{_tail(p)}"
        result = json.loads(p.stdout.strip().splitlines()[-1])
        print(f"imported {len(result['imported'])} modules; skipped {result['skipped']}")
        problems = [f"{name}: {msg}" for name, msg in sorted(result["failed"].items())]
        if result["extraction"]:
            problems.append(f"trafilatura extraction: {result['extraction']}")
        assert not problems, (
            f"{len(problems)} problem(s) in a plain `pip install .` with pip {pip_version}:\n"
            + "\n".join(problems)
        )

        p = _run([str(venv / "bin" / "webtext"), "--help"], timeout=300, env=env, cwd=work)
        assert p.returncode == 0, f"`webtext --help` failed\n{_tail(p)}"
