"""Global clustering of MinHash signatures: exact groups, LSH banding for candidates, Jaccard
confirmation, union-find, and a deterministic winner per cluster.

Two ways to find candidates, same result: in memory (one band at a time: hash the band,
argsort, equal runs) and out of core (band hashes of every band written to Parquet files
partitioned by hash, each partition sorted on its own). Why Parquet + sort rather than Redis
behind datasketch's storage config: nothing extra to run, the files live on the same fsspec
tree as the rest of the build (so many machines can share them), and sorting a partition is
bounded memory and deterministic. Signatures for confirmation are read through a memory map.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.core.ngrams import MASK64, fmix64_array

# Runs of equal band keys longer than this are linked as a star and a chain instead of all
# pairs, which would be quadratic (boilerplate pages can share a band by the thousand).
MAX_RUN_ALL_PAIRS = 32


@dataclass
class ClusterInput:
    """Everything clustering needs, one entry per document (no text)."""

    ids: list[str]
    text_hashes: list[str]
    karma: np.ndarray  # int64
    first_seen: np.ndarray  # int64 seconds; missing = int64 max (sorts last)
    signatures: np.ndarray  # (n, num_perm) uint32
    is_reference: np.ndarray  # bool: published earlier, always kept


@dataclass
class ClusterResult:
    kept: np.ndarray  # index of the kept document of each document's cluster (itself if kept)
    exact: np.ndarray  # bool: same normalized text as its kept document
    n_candidates: int
    n_confirmed: int


def confirm_cutoff(threshold: float, num_perm: int, z: float) -> float:
    """Estimated-Jaccard cut that keeps pairs whose true Jaccard is >= threshold with a
    margin of z standard errors of the estimator (a pair right at the threshold is otherwise
    missed half the time)."""
    return threshold - z * math.sqrt(threshold * (1 - threshold) / num_perm)


def priority_rank(inp: ClusterInput) -> np.ndarray:
    """rank[i]: 0 = best. References first, then highest karma, earliest first_seen, smallest
    id; position breaks exact ties only when ids repeat (then input order is sorted by id)."""
    n = len(inp.ids)
    id_rank = np.empty(n, dtype=np.int64)
    id_rank[np.array(sorted(range(n), key=lambda i: inp.ids[i]), dtype=np.int64)] = np.arange(n)
    order = np.lexsort((id_rank, inp.first_seen, -inp.karma, ~inp.is_reference))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    return rank


class UnionFind:
    def __init__(self, n: int):
        self.parent = np.arange(n, dtype=np.int64)

    def find(self, i: int) -> int:
        parent = self.parent
        root = i
        while parent[root] != root:
            root = int(parent[root])
        while parent[i] != root:
            parent[i], i = root, int(parent[i])
        return root

    def union(self, i: int, j: int) -> None:
        ri, rj = self.find(i), self.find(j)
        if ri != rj:
            # Smaller index becomes root: the structure does not depend on edge order.
            lo, hi = (ri, rj) if ri < rj else (rj, ri)
            self.parent[hi] = lo

    def roots(self) -> np.ndarray:
        return np.array([self.find(i) for i in range(self.parent.size)], dtype=np.int64)


def band_keys(
    sigs: np.ndarray, band: int, rows: int, members: np.ndarray | None = None
) -> np.ndarray:
    """64-bit key of one band of every signature (or of `members`); the band index is mixed
    in, so keys of different bands never meet in the out-of-core partitions."""
    cols = np.asarray(sigs[:, band * rows : (band + 1) * rows])
    cols = (cols if members is None else cols[members]).astype(np.uint64)
    acc = np.full(cols.shape[0], ((band + 1) * 0x9E3779B97F4A7C15) & MASK64, dtype=np.uint64)
    for c in range(cols.shape[1]):
        acc = fmix64_array(acc ^ cols[:, c]) + np.uint64(c)
    return acc


def _pairs_from_sorted(keys: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Candidate pairs (i < j) from members of equal-key runs; keys sorted, ties by idx."""
    if keys.size < 2:
        return np.empty((0, 2), dtype=np.int64)
    same = keys[1:] == keys[:-1]
    if not same.any():
        return np.empty((0, 2), dtype=np.int64)
    # Consecutive pairs cover every run as a chain; short runs add all remaining pairs.
    out = [np.stack((idx[:-1][same], idx[1:][same]), axis=1)]
    edges = np.flatnonzero(np.diff(np.concatenate(([0], same.astype(np.int8), [0]))))
    for s, e in zip(edges[::2], edges[1::2]):
        members = idx[s : e + 1]
        if members.size <= 2:
            continue
        if members.size <= MAX_RUN_ALL_PAIRS:
            ii, jj = np.triu_indices(members.size, k=2)
            out.append(np.stack((members[ii], members[jj]), axis=1))
        else:
            out.append(np.stack((np.full(members.size - 2, members[0]), members[2:]), axis=1))
    pairs = np.concatenate(out)
    return np.sort(pairs, axis=1)


def _unique_pairs(chunks: list[np.ndarray]) -> np.ndarray:
    if not chunks:
        return np.empty((0, 2), dtype=np.int64)
    pairs = np.concatenate(chunks)
    return np.unique(pairs, axis=0) if pairs.size else pairs.reshape(0, 2)


def candidates_in_memory(
    sigs: np.ndarray, members: np.ndarray, bands: int, rows: int
) -> np.ndarray:
    """Candidate pairs (indices into the full array) among `members`, one band at a time."""
    chunks = []
    for band in range(bands):
        keys = band_keys(sigs, band, rows, members)
        order = np.lexsort((members, keys))
        chunks.append(_pairs_from_sorted(keys[order], members[order]))
    return _unique_pairs(chunks)


def candidates_on_disk(
    sigs: np.ndarray,
    members: np.ndarray,
    bands: int,
    rows: int,
    spill_dir: Path,
    partitions: int,
    block: int = 1 << 20,
) -> np.ndarray:
    """Same pairs as `candidates_in_memory`, with memory bounded by one partition: band keys
    go to `partitions` Parquet files by key, then each file is sorted and scanned alone."""
    spill_dir.mkdir(parents=True, exist_ok=True)
    writers: dict[int, pq.ParquetWriter] = {}
    schema = pa.schema([("key", pa.uint64()), ("idx", pa.int64())])
    try:
        for start in range(0, members.size, block):
            chunk = members[start : start + block]
            sub = np.asarray(sigs[chunk])
            for band in range(bands):
                keys = band_keys(sub, band, rows)
                part = (keys % np.uint64(partitions)).astype(np.int64)
                for p in np.unique(part):
                    sel = part == p
                    if p not in writers:
                        writers[p] = pq.ParquetWriter(spill_dir / f"band-{p:05d}.parquet", schema)
                    writers[p].write_table(
                        pa.table({"key": keys[sel], "idx": chunk[sel]}, schema=schema)
                    )
    finally:
        for w in writers.values():
            w.close()
    chunks = []
    for p in sorted(writers):
        t = pq.read_table(spill_dir / f"band-{p:05d}.parquet")
        keys = t.column("key").to_numpy()
        idx = t.column("idx").to_numpy()
        order = np.lexsort((idx, keys))
        chunks.append(_pairs_from_sorted(keys[order], idx[order]))
    return _unique_pairs(chunks)


def confirm(sigs: np.ndarray, pairs: np.ndarray, cutoff: float, block: int = 1 << 16) -> np.ndarray:
    """The candidate pairs whose estimated Jaccard reaches the cutoff."""
    keep = np.zeros(len(pairs), dtype=bool)
    for s in range(0, len(pairs), block):
        p = pairs[s : s + block]
        est = np.mean(np.asarray(sigs[p[:, 0]]) == np.asarray(sigs[p[:, 1]]), axis=1)
        keep[s : s + block] = est >= cutoff
    return pairs[keep]


def cluster(
    inp: ClusterInput,
    threshold: float,
    bands: int,
    rows: int,
    confirm_z: float = 0.0,
    exact: bool = True,
    near: bool = True,
    spill_dir: Path | None = None,
    partitions: int = 64,
) -> ClusterResult:
    """Clusters of documents and the kept document of each; order of `inp` does not matter
    (ranks decide winners, the union-find's roots do not)."""
    n = len(inp.ids)
    # Work in a canonical order (by id, then text hash) so indices, hence the chain/star
    # links of long runs, do not depend on how the input happened to be ordered.
    canon = np.array(
        sorted(range(n), key=lambda i: (inp.ids[i], inp.text_hashes[i])), dtype=np.int64
    )
    if n and not np.array_equal(canon, np.arange(n)):
        res = cluster(
            _take(inp, canon),
            threshold,
            bands,
            rows,
            confirm_z,
            exact,
            near,
            spill_dir,
            partitions,
        )
        back = np.empty(n, dtype=np.int64)
        back[canon] = np.arange(n)
        return ClusterResult(
            kept=canon[res.kept[back]],
            exact=res.exact[back],
            n_candidates=res.n_candidates,
            n_confirmed=res.n_confirmed,
        )
    uf = UnionFind(n)
    rank = priority_rank(inp)
    hashes = inp.text_hashes
    # Exact groups: union every member with the group's best-ranked one, which represents the
    # group for near dedup (its members have identical signatures anyway).
    by_hash = sorted(range(n), key=lambda i: (hashes[i], int(rank[i])))
    reps = []
    prev = None
    head = -1
    for i in by_hash:
        h = hashes[i]
        if h != prev:
            prev, head = h, int(i)
            reps.append(head)
        elif exact:
            uf.union(head, int(i))
        else:
            reps.append(int(i))
    members = np.array(sorted(reps), dtype=np.int64)
    n_cand = n_conf = 0
    if near and members.size > 1:
        num_perm = inp.signatures.shape[1]
        bands = min(bands, num_perm // rows)
        if spill_dir is None:
            pairs = candidates_in_memory(inp.signatures, members, bands, rows)
        else:
            pairs = candidates_on_disk(inp.signatures, members, bands, rows, spill_dir, partitions)
        n_cand = len(pairs)
        confirmed = confirm(inp.signatures, pairs, confirm_cutoff(threshold, num_perm, confirm_z))
        n_conf = len(confirmed)
        for i, j in confirmed.tolist():
            uf.union(i, j)
    roots = uf.roots()
    kept = np.arange(n, dtype=np.int64)
    cutoff = confirm_cutoff(threshold, inp.signatures.shape[1], confirm_z)
    order = np.lexsort((rank, roots))
    bounds = np.flatnonzero(np.diff(roots[order])) + 1
    for comp in np.split(order, bounds):
        if comp.size > 1:
            _assign_in_component(comp, inp.signatures, hashes, exact, cutoff, kept)
    same_text = np.array([hashes[i] == hashes[k] for i, k in enumerate(kept)], dtype=bool)
    return ClusterResult(kept=kept, exact=same_text, n_candidates=n_cand, n_confirmed=n_conf)


def _assign_in_component(
    comp: np.ndarray,
    sigs: np.ndarray,
    hashes: list[str],
    exact: bool,
    cutoff: float,
    kept: np.ndarray,
) -> None:
    """Members of one union-find component, best rank first: each is dropped in favour of the
    best-ranked kept member it is itself a duplicate of (same text, or estimate >= cutoff),
    else kept. Union-find alone would chain A~B~C into one cluster even when A and C share
    little; this way every drop is confirmed against the document that is kept instead."""
    keepers: list[int] = []
    for i in comp.tolist():
        choice = -1
        if exact:
            for k in keepers:
                if hashes[k] == hashes[i]:
                    choice = k
                    break
        if choice < 0 and keepers:
            est = np.mean(np.asarray(sigs[keepers]) == np.asarray(sigs[i]), axis=1)
            hit = np.flatnonzero(est >= cutoff)
            if hit.size:
                choice = keepers[int(hit[0])]
        if choice < 0:
            keepers.append(i)
        else:
            kept[i] = choice


def _take(inp: ClusterInput, order: np.ndarray) -> ClusterInput:
    return ClusterInput(
        ids=[inp.ids[i] for i in order],
        text_hashes=[inp.text_hashes[i] for i in order],
        karma=inp.karma[order],
        first_seen=inp.first_seen[order],
        signatures=np.asarray(inp.signatures[order]),
        is_reference=inp.is_reference[order],
    )


def spill_tempdir(base: Path | None) -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="dedup-bands-", dir=base)
