"""The filter's rules, in the order they are checked: each reads the signals of one document
and returns the detail of a failure, or None."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from pipeline.core.config import FilterConfig

Rule = Callable[[dict[str, Any], FilterConfig], str | None]


def _parent_domains(host: str) -> Iterable[str]:
    """a.b.example.co.uk -> itself, b.example.co.uk, example.co.uk, co.uk, uk. Matching any
    of them against the list covers the registered domain without a suffix list."""
    labels = host.lower().rstrip(".").split(".")
    for i in range(len(labels)):
        yield ".".join(labels[i:])


def _host_of(url: str | None) -> str:
    if not url:
        return ""
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


def is_wikipedia(doc: dict[str, Any], domains: Iterable[str]) -> str | None:
    """The matching listed domain when the link or the page it redirected to is on one."""
    listed = {d.lower().strip(".") for d in domains}
    candidates = [doc.get("domain") or "", doc.get("host") or "", _host_of(doc.get("final_url"))]
    for cand in candidates:
        for parent in _parent_domains(cand):
            if parent in listed:
                return parent
    return None


def _num(v: Any) -> float:
    return float("nan") if v is None else float(v)


def _rule_wikipedia(d: dict[str, Any], c: FilterConfig) -> str | None:
    hit = is_wikipedia(d, c.wikipedia_domains)
    return hit


def _rule_wikipedia_copy(d: dict[str, Any], c: FilterConfig) -> str | None:
    """What is left after the copied paragraphs went is under the length floor."""
    stripped = d.get("wiki_stripped_chars") or 0
    n = d.get("n_tokens") or 0
    if stripped and n < c.min_tokens:
        return f"{n} < {c.min_tokens} tokens left after {stripped} chars of Wikipedia"
    return None


def _rule_eval_overlap(d: dict[str, Any], c: FilterConfig) -> str | None:
    """Set by the driver when decontamination is on (pipeline.filter.decontaminate)."""
    detail = d.get("eval_overlap")
    return str(detail) if detail else None


def _rule_language(d: dict[str, Any], c: FilterConfig) -> str | None:
    score = _num(d.get("lang_score"))
    if d.get("lang") not in c.langs or not score >= c.min_lang_score:
        return f"{d.get('lang')} {score:.2f}"
    return None


def _rule_too_short(d: dict[str, Any], c: FilterConfig) -> str | None:
    n = d.get("n_tokens") or 0
    return f"{n} < {c.min_tokens} tokens" if n < c.min_tokens else None


def _rule_too_long(d: dict[str, Any], c: FilterConfig) -> str | None:
    n = d.get("n_tokens") or 0
    if c.max_tokens is not None and n > c.max_tokens:
        return f"{n} > {c.max_tokens} tokens"
    return None


def _min_rule(column: str, field: str) -> Rule:
    def rule(d: dict[str, Any], c: FilterConfig) -> str | None:
        limit = getattr(c, field)
        v = _num(d.get(column))
        if limit is not None and v < limit:
            return f"{v:.3g} < {limit:g}"
        return None

    return rule


def _max_rule(column: str, field: str) -> Rule:
    def rule(d: dict[str, Any], c: FilterConfig) -> str | None:
        limit = getattr(c, field)
        v = _num(d.get(column))
        if limit is not None and v > limit:
            return f"{v:.3g} > {limit:g}"
        return None

    return rule


# (reason, rule) in the order they are checked.
RULES: list[tuple[str, Rule]] = [
    ("wikipedia", _rule_wikipedia),
    ("wikipedia_copy", _rule_wikipedia_copy),
    ("eval_overlap", _rule_eval_overlap),
    ("wrong_language", _rule_language),
    ("too_short", _rule_too_short),
    ("too_long", _rule_too_long),
    ("min_mean_word_len", _min_rule("mean_word_len", "min_mean_word_len")),
    ("max_mean_word_len", _max_rule("mean_word_len", "max_mean_word_len")),
    ("max_symbol_word_ratio", _max_rule("symbol_word_ratio", "max_symbol_word_ratio")),
    ("min_frac_lines_end_punct", _min_rule("frac_lines_end_punct", "min_frac_lines_end_punct")),
    ("max_dup_line_frac", _max_rule("dup_line_frac", "max_dup_line_frac")),
    ("min_stop_words", _min_rule("n_stop_words", "min_stop_words")),
    ("max_bullet_line_frac", _max_rule("bullet_line_frac", "max_bullet_line_frac")),
    ("max_ellipsis_line_frac", _max_rule("ellipsis_line_frac", "max_ellipsis_line_frac")),
    ("max_boilerplate_hits", _max_rule("boilerplate_hits", "max_boilerplate_hits")),
]


def check(doc: dict[str, Any], cfg: FilterConfig) -> tuple[str, str] | None:
    """(reason, detail) of the first rule the document fails, None when it passes all."""
    for reason, rule in RULES:
        detail = rule(doc, cfg)
        if detail is not None:
            return reason, detail
    return None
