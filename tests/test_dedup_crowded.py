"""Crowded LSH buckets: hundreds to thousands of documents sharing one band are linked exactly
as all their confirmed pairs would link them, at a cost near linear for near copies; the
spilled path (signatures in a file, band keys in partitions) gives the same result."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.core.config import DedupConfig
from pipeline.dedup import lsh
from pipeline.dedup.crowded import CrowdedStats, crowded_links
from pipeline.dedup.signature_store import SignatureFile

CFG = DedupConfig()
NUM_PERM, ROWS, BANDS = CFG.num_perm, CFG.rows, CFG.bands
MIN_MATCH = lsh.min_matches(lsh.confirm_cutoff(CFG.threshold, NUM_PERM, CFG.confirm_z), NUM_PERM)


def star_families(n_fam: int, per_fam: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Families sharing band 0 (one crowded bucket of n_fam x per_fam). Member 0 of a family
    is its original; every copy changes one value in each of bands 1..20, so it matches the
    original (20 of 128 values differ) but mostly not the other copies (~37 differ), and no
    other band groups anything: only band 0 can propose the family's pairs."""
    rng = np.random.default_rng(seed)
    band0 = rng.integers(0, 2**32, ROWS, dtype=np.uint32)
    sigs = np.empty((n_fam * per_fam, NUM_PERM), dtype=np.uint32)
    family = np.repeat(np.arange(n_fam), per_fam)
    for f in range(n_fam):
        base = rng.integers(0, 2**32, NUM_PERM, dtype=np.uint32)
        base[:ROWS] = band0
        block = np.tile(base, (per_fam, 1))
        for b in range(1, BANDS):
            pos = b * ROWS + rng.integers(0, ROWS, per_fam - 1)
            block[np.arange(1, per_fam), pos] = rng.integers(0, 2**32, per_fam - 1, dtype=np.uint32)
        sigs[f * per_fam : (f + 1) * per_fam] = block
    return sigs, family


def cluster_input(sigs: np.ndarray, ids: list[str], karma: np.ndarray) -> lsh.ClusterInput:
    n = len(ids)
    return lsh.ClusterInput(
        ids=ids,
        text_hashes=[f"{i:032x}" for i in range(n)],
        karma=karma.astype(np.int64),
        first_seen=np.zeros(n, dtype=np.int64),
        signatures=sigs,
        is_reference=np.zeros(n, dtype=bool),
    )


def run(inp: lsh.ClusterInput, **kw: object) -> lsh.ClusterResult:
    return lsh.cluster(inp, CFG.threshold, BANDS, ROWS, CFG.confirm_z, **kw)  # type: ignore[arg-type]


def test_crowded_bucket_keeps_one_per_family() -> None:
    n_fam, per_fam = 3, 400
    sigs, family = star_families(n_fam, per_fam)
    # Ids interleave the families (d0000-0, d0000-1, d0000-2, d0001-0, ...): consecutive
    # members of the bucket belong to different families, which a chain of neighbours misses.
    ids = [f"d{i % per_fam:04d}-{family[i]}" for i in range(len(family))]
    karma = np.where(np.arange(len(family)) % per_fam == 0, 100, 5)  # originals win
    res = run(cluster_input(sigs, ids, karma))
    originals = np.arange(n_fam) * per_fam
    assert sorted(np.flatnonzero(res.kept == np.arange(len(family))).tolist()) == originals.tolist()
    assert np.array_equal(res.kept, originals[family])
    assert res.crowded.buckets == 1 and res.crowded.members == n_fam * per_fam
    assert int(res.exact.sum()) == n_fam


def test_crowded_links_equal_all_pairs_components() -> None:
    """Random buckets with families at several spreads, so that step 1 leaves several groups
    and step 2 must join some: the components equal those of all confirmed pairs."""
    radius = NUM_PERM - MIN_MATCH
    joins = 0
    for seed in range(8):
        rng = np.random.default_rng(seed)
        rows = []
        for _ in range(rng.integers(3, 7)):
            base = rng.integers(0, 2**32, NUM_PERM, dtype=np.uint32)
            for _ in range(rng.integers(5, 40)):
                row = base.copy()
                k = rng.integers(0, radius + 10)
                row[rng.choice(NUM_PERM, k, replace=False)] = rng.integers(0, 2**32, k)
                rows.append(row)
        sigs = np.array(rows, dtype=np.uint32)[rng.permutation(len(rows))]
        m = len(sigs)
        members = np.arange(m, dtype=np.int64) * 3 + 7  # global indices, sorted
        stats = CrowdedStats()
        links = crowded_links(sigs, members, MIN_MATCH, stats)
        # Every link is a confirmed pair.
        local = (links - 7) // 3
        assert (np.count_nonzero(sigs[local[:, 0]] == sigs[local[:, 1]], axis=1) >= MIN_MATCH).all()
        eq = (sigs[:, None, :] == sigs[None, :, :]).sum(axis=2)
        ii, jj = np.nonzero(np.triu(eq >= MIN_MATCH, k=1))
        truth = lsh.components(m, np.stack((ii, jj), axis=1))
        got = lsh.components(m, local)
        assert np.array_equal(got, truth), seed
        joins += stats.joins
    assert joins > 0  # step 2 was needed and found its links


def test_ten_thousand_near_copies_cost_linear() -> None:
    rng = np.random.default_rng(1)
    base = rng.integers(0, 2**32, NUM_PERM, dtype=np.uint32)
    n = 10_000
    sigs = np.tile(base, (n, 1))
    for r in range(n):  # up to 12 changed values each: every pair within the radius
        k = int(rng.integers(0, 13))
        sigs[r, rng.choice(np.arange(ROWS, NUM_PERM), k, replace=False)] = rng.integers(0, 2**32, k)
    stats = CrowdedStats()
    links = crowded_links(sigs, np.arange(n, dtype=np.int64), MIN_MATCH, stats)
    assert np.array_equal(lsh.components(n, links), np.zeros(n, dtype=np.int64))
    assert stats.comparisons <= 2 * n


def test_spilled_path_equals_in_memory_with_crowded_buckets(tmp_path: Path) -> None:
    sigs, _ = star_families(4, 150, seed=3)
    rng = np.random.default_rng(5)
    # Arbitrary order and ids, plus unrelated documents and exact copies.
    extra = rng.integers(0, 2**32, (300, NUM_PERM), dtype=np.uint32)
    sigs = np.concatenate((sigs, extra, extra[:20]))
    n = len(sigs)
    perm = rng.permutation(n)
    sigs = sigs[perm]
    ids = [f"{int(x):016x}" for x in rng.integers(0, 2**63, n)]
    hashes = [f"{int(p):032x}" if p < n - 20 else f"{int(p) - (n - 20) + 600:032x}" for p in perm]
    karma = rng.integers(3, 1000, n)
    inp = lsh.ClusterInput(
        ids=ids,
        text_hashes=hashes,
        karma=karma.astype(np.int64),
        first_seen=rng.integers(0, 10**9, n).astype(np.int64),
        signatures=sigs,
        is_reference=np.zeros(n, dtype=bool),
    )
    mem = run(inp)
    store = SignatureFile(tmp_path / "sigs.u32", NUM_PERM)
    for s in range(0, n, 97):
        store.append(sigs[s : s + 97])
    store.seal()
    disk_inp = lsh.ClusterInput(**{**inp.__dict__, "signatures": store})
    disk = run(disk_inp, spill_dir=tmp_path / "bands", partitions=5)
    store.close()
    assert np.array_equal(mem.kept, disk.kept) and np.array_equal(mem.exact, disk.exact)
    assert (mem.n_candidates, mem.n_confirmed) == (disk.n_candidates, disk.n_confirmed)
    assert mem.crowded == disk.crowded and mem.crowded.buckets >= 1
    assert int(mem.exact.sum() - (mem.kept == np.arange(n)).sum()) == 20  # the exact copies
    # Input order does not matter: the same winners by id.
    back = rng.permutation(n)
    shuffled = lsh.ClusterInput(
        ids=[ids[i] for i in back],
        text_hashes=[hashes[i] for i in back],
        karma=inp.karma[back],
        first_seen=inp.first_seen[back],
        signatures=sigs[back],
        is_reference=inp.is_reference[back],
    )
    again = run(shuffled)
    assert [ids[i] for i in mem.kept[back]] == [shuffled.ids[i] for i in again.kept]
