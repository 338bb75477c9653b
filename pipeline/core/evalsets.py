"""Evaluation files, read one way for every stage that uses them (the filter's
decontamination, the overlap audit): one example per line; `.jsonl` files hold one JSON object
per line with a string `text` field (LAMBADA's OpenAI release), any other file plain UTF-8 text
(PTB, CBT, 1BW). Blank lines are not examples; line numbers are the file's, 1-based.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path

from pipeline.core.errors import ConfigError


def check_eval_sets(eval_sets: Mapping[str, str | Path]) -> None:
    """ConfigError unless every evaluation set has a simple name and a readable file."""
    for name, path in eval_sets.items():
        if not name or any(c in name for c in "=/\\\n"):
            raise ConfigError(f"bad evaluation set name {name!r}")
        if not Path(path).is_file():
            raise ConfigError(f"evaluation set {name}: file not found: {path}")


def iter_examples(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of every example of an evaluation file, in order (1-based)."""
    path = Path(path)
    jsonl = path.name.lower().endswith(".jsonl")
    try:
        data = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read evaluation set {path}: {err}") from None
    # Physical lines (JSON strings may hold a raw U+2028, which splitlines() would split).
    for lineno, line in enumerate(data.replace("\r\n", "\n").split("\n"), 1):
        if not line.strip():
            continue
        if not jsonl:
            yield lineno, line
            continue
        try:
            obj = json.loads(line)
        except ValueError as err:
            raise ConfigError(f"{path}:{lineno}: not JSON ({err})") from None
        text = obj.get("text") if isinstance(obj, dict) else None
        if not isinstance(text, str):
            raise ConfigError(f'{path}:{lineno}: no string "text" field')
        if text.strip():
            yield lineno, text
