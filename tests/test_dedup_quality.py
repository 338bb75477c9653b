"""Labelled near-duplicate set from real article bodies: recall, no false merges, and the
out-of-core candidate path giving the same clusters as the in-memory one."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from pipeline import dedup
from pipeline.core.config import DedupConfig
from pipeline.core.ngrams import normalize, text_hash
from pipeline.dedup import lsh
from pipeline.dedup.minhash import signatures
from tests.test_dedup_helpers import evaluate, gold_bodies, labelled_set, true_jaccard


@pytest.fixture(scope="module")
def labelled(shared_data: Path) -> tuple[dict[str, str], list[tuple[str, str, float, str]]]:
    return labelled_set(gold_bodies(shared_data), copies=3, seed=0)


def test_recall_and_no_false_merges(labelled) -> None:
    texts, pairs = labelled
    mapping = dedup.cluster(texts)
    m = evaluate(texts, pairs, mapping)
    # The generated set spans the whole range: near copies and mere excerpts.
    assert m["pairs_j_ge_0_8"] >= 250 and m["pairs_j_lt_0_5"] >= 50
    assert m["recall_j_ge_0_8"] >= 0.98
    assert m["merged_pairs_j_lt_0_5"] == 0
    assert min(true_jaccard(texts[a], texts[b]) for a, b in mapping.items()) >= 0.5


def test_input_order_does_not_change_the_mapping(labelled) -> None:
    texts, _ = labelled
    base = dedup.cluster(texts)
    for seed in (1, 2):
        keys = list(texts)
        random.Random(seed).shuffle(keys)
        assert dedup.cluster({k: texts[k] for k in keys}) == base


def test_out_of_core_path_equals_in_memory(labelled, tmp_path: Path) -> None:
    texts, _ = labelled
    ids = sorted(texts)
    norm = [normalize(texts[i]) for i in ids]
    cfg = DedupConfig()
    n = len(ids)
    inp = lsh.ClusterInput(
        ids=ids,
        text_hashes=[text_hash(t) for t in norm],
        karma=np.arange(n, dtype=np.int64) % 5,
        first_seen=np.zeros(n, dtype=np.int64),
        signatures=signatures(norm, cfg.num_perm, cfg.seed, cfg.ngram),
        is_reference=np.zeros(n, dtype=bool),
    )
    args = (cfg.threshold, cfg.bands, cfg.rows, cfg.confirm_z)
    mem = lsh.cluster(inp, *args)
    disk = lsh.cluster(inp, *args, spill_dir=tmp_path / "bands", partitions=7)
    assert (mem.n_candidates, mem.n_confirmed) == (disk.n_candidates, disk.n_confirmed)
    assert np.array_equal(mem.kept, disk.kept) and np.array_equal(mem.exact, disk.exact)
    assert len(list((tmp_path / "bands").glob("band-*.bin"))) == 7
    assert int((mem.kept != np.arange(n)).sum()) > 300
