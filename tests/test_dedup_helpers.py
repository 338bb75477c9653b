"""Shared builders for the dedup tests: DOCS_SCHEMA parts and edited copies of real text."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.core.io import rows_to_table, write_table
from schemas.records import DOCS_SCHEMA


def doc_row(
    doc_id: str, text: str, karma: int = 3, first_seen: datetime | None = None
) -> dict[str, Any]:
    row: dict[str, Any] = {name: None for name in DOCS_SCHEMA.names}
    row.update(
        id=doc_id,
        url=f"https://example.com/{doc_id}",
        domain="example.com",
        karma=karma,
        first_seen=first_seen or datetime(2017, 1, 1, tzinfo=UTC),
        text=text,
        subreddits=[],
    )
    return row


def write_part(path: Path, rows: list[dict[str, Any]]) -> Path:
    write_table(path, rows_to_table(rows, DOCS_SCHEMA))
    return path


def gold_bodies(shared_data: Path, min_words: int = 150) -> list[str]:
    """Article bodies of the Scrapinghub gold set, long enough to edit, in a fixed order."""
    data = json.loads((shared_data / "extraction/scrapinghub/ground-truth.json").read_text())
    bodies = [data[k]["articleBody"] for k in sorted(data)]
    return [b for b in bodies if len(b.split()) >= min_words]


BOILERPLATE = [
    "Sign up for our newsletter to get the latest stories delivered to your inbox every morning.",
    "Share this article on Facebook Twitter and LinkedIn. Copyright 2019 All rights reserved.",
    "Advertisement. Continue reading the main story below. Subscribe now for unlimited access.",
    "Related coverage: more from our reporters on this topic. Read next. Most popular stories.",
]


def edit(text: str, rng: random.Random) -> tuple[str, str]:
    """One realistic near copy: the kind of change and the edited text."""
    paras = [p for p in text.split("\n") if p.strip()]
    kind = rng.choice(
        ["boiler_add", "boiler_remove", "words", "para_drop", "truncate", "mix", "excerpt"]
    )
    if kind in ("boiler_add", "mix"):
        paras = (
            [rng.choice(BOILERPLATE)] + paras + [rng.choice(BOILERPLATE), rng.choice(BOILERPLATE)]
        )
    if kind == "boiler_remove" and len(paras) > 2:
        paras = paras[1:-1]
    if kind in ("words", "mix"):
        words = " ".join(paras).split(" ")
        rate = rng.uniform(0.002, 0.03)
        for i in range(len(words)):
            if rng.random() < rate:
                words[i] = rng.choice(["the", "a", "new", "said", "people", words[i].upper() + "s"])
        paras = [" ".join(words)]
    if kind == "para_drop" and len(paras) > 3:
        k = rng.randint(1, max(1, len(paras) // 5))
        for _ in range(k):
            paras.pop(rng.randrange(len(paras)))
    if kind == "truncate":
        words = " ".join(paras).split(" ")
        paras = [" ".join(words[: int(len(words) * rng.uniform(0.5, 0.97))])]
    if kind == "excerpt":
        # A quote or teaser of the article: related text that is not a duplicate.
        words = " ".join(paras).split(" ")
        n = int(len(words) * rng.uniform(0.15, 0.45))
        s = rng.randrange(0, len(words) - n)
        paras = [" ".join(words[s : s + n])]
    return kind, "\n".join(paras)


def true_jaccard(a: str, b: str, ngram: int = 5) -> float:
    """Exact Jaccard of the word n-gram sets of the normalized texts."""
    from pipeline.core.ngrams import normalize
    from pipeline.dedup.minhash import shingles

    sa, sb = set(shingles(normalize(a), ngram)), set(shingles(normalize(b), ngram))
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)


def labelled_set(
    bodies: list[str], copies: int = 3, seed: int = 0
) -> tuple[dict[str, str], list[tuple[str, str, float, str]]]:
    """Texts by id and labelled pairs (original id, copy id, true Jaccard, edit kind)."""
    rng = random.Random(seed)
    texts: dict[str, str] = {}
    pairs: list[tuple[str, str, float, str]] = []
    for i, body in enumerate(bodies):
        oid = f"g{i:03d}"
        texts[oid] = body
        for c in range(copies):
            kind, copy = edit(body, rng)
            cid = f"g{i:03d}-c{c}"
            texts[cid] = copy
            pairs.append((oid, cid, true_jaccard(body, copy), kind))
    return texts, pairs


def evaluate(
    texts: dict[str, str], pairs: list[tuple[str, str, float, str]], mapping: dict[str, str]
) -> dict[str, float]:
    """Recall of pairs with J >= 0.8 (same cluster), and the lowest true Jaccard of any two
    documents placed in one cluster (over all pairs inside every cluster, not just labelled)."""

    def kept(x: str) -> str:
        return mapping.get(x, x)

    high = [(a, b) for a, b, j, _ in pairs if j >= 0.8]
    found = sum(kept(a) == kept(b) for a, b in high)
    clusters: dict[str, list[str]] = {}
    for x in texts:
        clusters.setdefault(kept(x), []).append(x)
    min_j = 1.0
    merged_low = 0
    for members in clusters.values():
        for i in range(len(members)):
            for j in range(i + 1, len(members)):
                jac = true_jaccard(texts[members[i]], texts[members[j]])
                min_j = min(min_j, jac)
                merged_low += jac < 0.5
    low = [(a, b) for a, b, j, _ in pairs if j < 0.5]
    return {
        "pairs": len(pairs),
        "pairs_j_ge_0_8": len(high),
        "recall_j_ge_0_8": found / len(high) if high else 1.0,
        "pairs_j_lt_0_5": len(low),
        "merged_pairs_j_lt_0_5": merged_low,
        "min_true_jaccard_in_cluster": min_j,
        "dropped": len(mapping),
    }
