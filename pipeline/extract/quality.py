"""Quality signals of an extracted text, stored as columns; `filter` applies thresholds.

The signals follow Gopher (Rae et al. 2021, "MassiveText" quality filters) and C4 (Raffel et
al. 2020): word counts and mean word length, symbol-to-word ratio, bullet/ellipsis lines,
duplicated lines, stop words, and boilerplate markers (lorem ipsum, cookie and javascript
notices). They are computed once at extraction so changing a threshold only reruns filter.
"""

from __future__ import annotations

import re
from typing import Any

_WORD = re.compile(r"\w+")
# Gopher's stop-word rule: an English document has at least two of these.
STOP_WORDS = frozenset(["the", "be", "to", "of", "and", "that", "have", "with"])
# One regex pass instead of lower-casing every word: same count as `\w+` tokens in STOP_WORDS.
_STOP = re.compile(r"(?<!\w)(?:" + "|".join(sorted(STOP_WORDS)) + r")(?!\w)")
_BULLETS = ("•", "●", "○", "▪", "▫", "■", "□", "◦", "‣", "⁃", "-", "*", "·", "–", "—", "►", "✓")
_END_PUNCT = (".", "!", "?", '"', "'", "”", "’", "»", ")", ":", "…", "。", "！", "？")
# C4 drops lines with "javascript" and pages with "lorem ipsum"; cookie banners and "enable
# javascript" notices are the boilerplate trafilatura most often lets through.
BOILERPLATE = re.compile(
    r"lorem ipsum|enable javascript|javascript is disabled|javascript (?:is )?required"
    r"|(?:uses?|accept|allow) (?:all )?cookies|cookie policy|cookie settings"
    r"|please turn on javascript|your browser does not support",
)
# Substring tests are ~50x cheaper than the regex; most texts contain none of these.
_BOILERPLATE_KEYS = ("lorem", "javascript", "cookie", "browser")


def _lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def signals(text: str, n_tokens: int | None = None) -> dict[str, Any]:
    """Every signal column of DOCS_SCHEMA except n_tokens (the caller's tokenizer gives it;
    passed through when known). Empty text gives zeros, never a division error."""
    words = _WORD.findall(text)
    n_words = len(words)
    lines = _lines(text)
    n_lines = len(lines)
    # Gopher counts '#' and ellipses against words: hashtag lists and teaser snippets.
    n_symbols = text.count("#") + text.count("...") + text.count("…")
    dup_chars = 0
    seen: set[str] = set()
    for ln in lines:
        if ln in seen:
            dup_chars += len(ln)
        seen.add(ln)
    line_chars = sum(len(ln) for ln in lines)
    lower = text.lower()
    boilerplate = (
        len(BOILERPLATE.findall(lower)) if any(k in lower for k in _BOILERPLATE_KEYS) else 0
    )
    return {
        "n_chars": len(text),
        "n_words": n_words,
        "n_tokens": n_tokens,
        "mean_word_len": (len("".join(words)) / n_words) if n_words else 0.0,
        "symbol_word_ratio": (n_symbols / n_words) if n_words else 0.0,
        "frac_lines_end_punct": (
            sum(1 for ln in lines if ln.endswith(_END_PUNCT)) / n_lines if n_lines else 0.0
        ),
        # By characters, as Gopher's duplicate-line-character fraction: a repeated one-word
        # line ("Advertisement") should weigh less than a repeated paragraph.
        "dup_line_frac": (dup_chars / line_chars) if line_chars else 0.0,
        "n_stop_words": len(_STOP.findall(lower)),
        "bullet_line_frac": (
            sum(1 for ln in lines if ln.startswith(_BULLETS)) / n_lines if n_lines else 0.0
        ),
        "ellipsis_line_frac": (
            sum(1 for ln in lines if ln.endswith(("...", "…"))) / n_lines if n_lines else 0.0
        ),
        "boilerplate_hits": boilerplate,
    }
