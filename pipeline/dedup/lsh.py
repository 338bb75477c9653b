"""Global clustering of MinHash signatures: exact groups, LSH banding for candidates, Jaccard
confirmation, connected components, and a deterministic winner per cluster.

Memory is a few numpy arrays per document (under 300 bytes at the peak, measured by
benchmarks/dedup_scale.py) besides the signatures, which live in memory or in a file
(signature_store): ids and text hashes enter as Arrow string arrays and are reduced to dense
integer ranks, and no Python object is made per document.

Two ways to group band keys, same result: in memory (one band at a time: hash the band, sort,
equal runs) and out of core (band keys of every band appended to `partitions` flat files by
key, each file then sorted on its own). Why flat files rather than Redis behind datasketch's
storage config: nothing extra to run, they live under the build's own folder, and sorting a
partition is bounded memory and deterministic.

A run of equal keys proposes all of its pairs: short runs are confirmed pair by pair, crowded
runs (more than MAX_RUN_ALL_PAIRS) through pipeline.dedup.crowded, which links them exactly as
all their confirmed pairs would, in about linear time for near copies.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.core.ngrams import MASK64, fmix64_array
from pipeline.dedup.crowded import CrowdedStats, crowded_links, matches
from pipeline.dedup.signature_store import Signatures, read_rows

MAX_RUN_ALL_PAIRS = 32
_PAIR_BLOCK = 1 << 16
_KEY_RECORD = np.dtype([("key", "<u8"), ("idx", "<i8")])

Strings: TypeAlias = Sequence[str] | pa.Array | pa.ChunkedArray


@dataclass
class ClusterInput:
    """Everything clustering needs, one entry per document (no text)."""

    ids: Strings
    text_hashes: Strings
    karma: np.ndarray  # int64
    first_seen: np.ndarray  # int64 seconds; missing = int64 max (sorts last)
    signatures: Signatures  # (n, num_perm) uint32, in memory or a SignatureFile
    is_reference: np.ndarray  # bool: published earlier, always kept


@dataclass
class ClusterResult:
    kept: np.ndarray  # index of the kept document of each document's cluster (itself if kept)
    exact: np.ndarray  # bool: same normalized text as its kept document
    n_candidates: int  # distinct pairs confirmed one by one (runs up to MAX_RUN_ALL_PAIRS)
    n_confirmed: int  # distinct confirmed links, crowded runs' included
    crowded: CrowdedStats = field(default_factory=CrowdedStats)


def confirm_cutoff(threshold: float, num_perm: int, z: float) -> float:
    """Estimated-Jaccard cut that keeps pairs whose true Jaccard is >= threshold with a
    margin of z standard errors of the estimator (a pair right at the threshold is otherwise
    missed half the time)."""
    return threshold - z * math.sqrt(threshold * (1 - threshold) / num_perm)


def min_matches(cutoff: float, num_perm: int) -> int:
    """Fewest equal signature values whose estimate (equal / num_perm) reaches the cutoff;
    integer counts make the estimator's distance a metric that crowded runs can prune with."""
    for m in range(num_perm + 1):
        if m / num_perm >= cutoff:
            return m
    return num_perm + 1


def dense_rank(values: Strings) -> np.ndarray:
    """0-based rank of each string among the distinct values (byte order = code point order)."""
    arr = (
        values if isinstance(values, pa.Array | pa.ChunkedArray) else pa.array(values, pa.string())
    )
    if len(arr) == 0:
        return np.empty(0, dtype=np.int64)
    ranks = pc.rank(arr, sort_keys="ascending", tiebreaker="dense")
    return ranks.to_numpy().astype(np.int64) - 1


def priority_rank(
    id_rank: np.ndarray,
    hash_rank: np.ndarray,
    karma: np.ndarray,
    first_seen: np.ndarray,
    is_reference: np.ndarray,
) -> np.ndarray:
    """rank[i]: 0 = best. References first, then highest karma, earliest first_seen, smallest
    id, smallest text hash, then input position (only when id and text repeat)."""
    n = id_rank.size
    order = np.lexsort(
        (np.arange(n), hash_rank, id_rank, first_seen, -karma, ~is_reference.astype(bool))
    )
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    return rank


def components(n: int, edges: np.ndarray) -> np.ndarray:
    """Smallest member index of each document's connected component (itself if alone)."""
    roots = np.arange(n, dtype=np.int64)
    if edges.size == 0:
        return roots
    nodes, inverse = np.unique(edges, return_inverse=True)
    e = inverse.reshape(-1, 2)
    label = np.arange(nodes.size, dtype=np.int64)
    while True:
        low = np.minimum(label[e[:, 0]], label[e[:, 1]])
        new = label.copy()
        np.minimum.at(new, e[:, 0], low)
        np.minimum.at(new, e[:, 1], low)
        while True:  # pointer jumping: every label points at its label's label
            jumped = new[new]
            if np.array_equal(jumped, new):
                break
            new = jumped
        if np.array_equal(new, label):
            break
        label = new
    roots[nodes] = nodes[label]
    return roots


def band_keys(sigs: np.ndarray, band: int, rows_per_band: int) -> np.ndarray:
    """64-bit key of one band of every row of `sigs`; the band index is mixed in, so keys of
    different bands never meet in the out-of-core partitions."""
    return _keys(sigs[:, band * rows_per_band : (band + 1) * rows_per_band], band)


def _keys(band_cols: np.ndarray, band: int) -> np.ndarray:
    cols = band_cols.astype(np.uint64)
    acc = np.full(cols.shape[0], ((band + 1) * 0x9E3779B97F4A7C15) & MASK64, dtype=np.uint64)
    for c in range(cols.shape[1]):
        acc = fmix64_array(acc ^ cols[:, c]) + np.uint64(c)
    return acc


@dataclass
class _Links:
    """What the runs of equal band keys propose: pairs to confirm and already confirmed links."""

    min_match: int
    pairs: list[np.ndarray] = field(default_factory=list)
    confirmed: list[np.ndarray] = field(default_factory=list)
    crowded: CrowdedStats = field(default_factory=CrowdedStats)


def _scan_runs(keys: np.ndarray, idx: np.ndarray, sigs: Signatures, links: _Links) -> None:
    """Runs of equal keys (keys sorted, ties by idx): all pairs of short runs, crowded runs
    linked through their leaders."""
    if keys.size < 2:
        return
    change = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    starts = np.concatenate(([0], change))
    lens = np.diff(np.concatenate((starts, [keys.size])))
    short = (lens >= 2) & (lens <= MAX_RUN_ALL_PAIRS)
    for length in np.unique(lens[short]).tolist():
        members = idx[starts[short & (lens == length)][:, None] + np.arange(length)]
        ii, jj = np.triu_indices(length, k=1)
        links.pairs.append(np.stack((members[:, ii].ravel(), members[:, jj].ravel()), axis=1))
    for s, length in zip(starts[lens > MAX_RUN_ALL_PAIRS].tolist(), lens[lens > MAX_RUN_ALL_PAIRS]):
        members = idx[s : s + int(length)]
        links.confirmed.append(
            crowded_links(read_rows(sigs, members), members, links.min_match, links.crowded)
        )


def _links_in_memory(
    sigs: Signatures, members: np.ndarray, bands: int, rows_per_band: int, links: _Links
) -> None:
    for band in range(bands):
        lo, hi = band * rows_per_band, (band + 1) * rows_per_band
        if isinstance(sigs, np.ndarray):
            keys = _keys(sigs[members, lo:hi], band)  # copies this band's columns only
        else:
            keys = np.concatenate(
                [
                    _keys(read_rows(sigs, members[s : s + _PAIR_BLOCK])[:, lo:hi], band)
                    for s in range(0, members.size, _PAIR_BLOCK)
                ]
                or [np.empty(0, dtype=np.uint64)]
            )
        order = np.lexsort((members, keys))
        _scan_runs(keys[order], members[order], sigs, links)


def _links_on_disk(
    sigs: Signatures,
    members: np.ndarray,
    bands: int,
    rows_per_band: int,
    links: _Links,
    spill_dir: Path,
    partitions: int,
    block: int = 1 << 16,
) -> None:
    """Same links as in memory, with memory bounded by one partition plus one block."""
    spill_dir.mkdir(parents=True, exist_ok=True)
    paths = [spill_dir / f"band-{p:05d}.bin" for p in range(partitions)]
    files = [open(p, "wb") for p in paths]  # noqa: SIM115 - closed below
    try:
        for start in range(0, members.size, block):
            chunk = members[start : start + block]
            sub = read_rows(sigs, chunk)
            for band in range(bands):
                keys = band_keys(sub, band, rows_per_band)
                part = (keys % np.uint64(partitions)).astype(np.int64)
                order = np.argsort(part, kind="stable")
                rec = np.empty(chunk.size, dtype=_KEY_RECORD)
                rec["key"], rec["idx"] = keys[order], chunk[order]
                counts = np.bincount(part, minlength=partitions)
                bounds = np.concatenate(([0], np.cumsum(counts)))
                for p in np.flatnonzero(counts).tolist():
                    files[p].write(rec[bounds[p] : bounds[p + 1]].tobytes())
    finally:
        for f in files:
            f.close()
    for path in paths:
        rec = np.fromfile(path, dtype=_KEY_RECORD)
        order = np.lexsort((rec["idx"], rec["key"]))
        _scan_runs(rec["key"][order], rec["idx"][order], sigs, links)
        del rec, order


def _unique_pairs(chunks: list[np.ndarray], n: int) -> np.ndarray:
    if not chunks:
        return np.empty((0, 2), dtype=np.int64)
    pairs = np.concatenate(chunks)
    code = np.unique(pairs[:, 0] * np.int64(n) + pairs[:, 1])
    return np.stack((code // n, code % n), axis=1)


def confirm(sigs: Signatures, pairs: np.ndarray, min_match: int) -> np.ndarray:
    """The candidate pairs with at least `min_match` equal signature values."""
    keep = np.zeros(len(pairs), dtype=bool)
    for s in range(0, len(pairs), _PAIR_BLOCK):
        p = pairs[s : s + _PAIR_BLOCK]
        keep[s : s + _PAIR_BLOCK] = (
            matches(read_rows(sigs, p[:, 0]), read_rows(sigs, p[:, 1])) >= min_match
        )
    return pairs[keep]


def _exact_groups(
    hash_rank: np.ndarray, rank: np.ndarray, exact: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Representatives (the best-ranked member of each identical text; every document when
    exact dedup is off) and the (head, member) links of identical texts."""
    order = np.lexsort((rank, hash_rank))
    h = hash_rank[order]
    first = np.concatenate(([True], h[1:] != h[:-1])) if h.size else np.zeros(0, dtype=bool)
    if not exact:
        return np.sort(order), np.empty((0, 2), dtype=np.int64)
    heads = order[first]
    head_of = heads[np.cumsum(first) - 1]
    rest = ~first
    edges = np.stack((head_of[rest], order[rest]), axis=1)
    return np.sort(heads), np.sort(edges, axis=1)


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
    """Clusters of documents and the kept document of each. The order of `inp` does not
    matter: components are exact sets, and ranks decide winners."""
    n = inp.karma.shape[0]
    num_perm = inp.signatures.shape[1]
    id_rank = dense_rank(inp.ids)
    hash_rank = dense_rank(inp.text_hashes)
    rank = priority_rank(id_rank, hash_rank, inp.karma, inp.first_seen, inp.is_reference)
    del id_rank
    cutoff = confirm_cutoff(threshold, num_perm, confirm_z)
    links = _Links(min_matches(cutoff, num_perm))
    reps, exact_edges = _exact_groups(hash_rank, rank, exact)
    n_cand = n_conf = 0
    edges = [exact_edges]
    if near and reps.size > 1:
        bands = min(bands, num_perm // rows)
        if spill_dir is None:
            _links_in_memory(inp.signatures, reps, bands, rows, links)
        else:
            _links_on_disk(inp.signatures, reps, bands, rows, links, spill_dir, partitions)
        pairs = _unique_pairs(links.pairs, n)
        links.pairs.clear()
        n_cand = len(pairs)
        confirmed = _unique_pairs(
            [confirm(inp.signatures, pairs, links.min_match), *links.confirmed], n
        )
        links.confirmed.clear()
        n_conf = len(confirmed)
        edges.append(confirmed)
    roots = components(n, np.concatenate(edges))
    kept = np.arange(n, dtype=np.int64)
    _assign_winners(roots, rank, hash_rank, inp.signatures, exact, links.min_match, kept)
    same_text = hash_rank[kept] == hash_rank
    return ClusterResult(kept, same_text, n_cand, n_conf, links.crowded)


def _assign_winners(
    roots: np.ndarray,
    rank: np.ndarray,
    hash_rank: np.ndarray,
    sigs: Signatures,
    exact: bool,
    min_match: int,
    kept: np.ndarray,
) -> None:
    """Components of more than one member, a batch of them at a time (their signature rows
    read together)."""
    size = np.bincount(roots, minlength=roots.size)
    multi = np.flatnonzero(size[roots] > 1)
    if multi.size == 0:
        return
    order = multi[np.lexsort((rank[multi], roots[multi]))]
    bounds = np.flatnonzero(np.diff(roots[order])) + 1
    starts = np.concatenate(([0], bounds))
    ends = np.concatenate((bounds, [order.size]))
    i = 0
    while i < starts.size:
        j = i + 1
        while j < starts.size and ends[j] - starts[i] <= _PAIR_BLOCK:
            j += 1
        batch = order[starts[i] : ends[j - 1]]
        batch_sigs = read_rows(sigs, batch)
        for s, e in zip(starts[i:j].tolist(), ends[i:j].tolist()):
            off = s - int(starts[i])
            _assign_in_component(
                order[s:e], batch_sigs[off : off + e - s], hash_rank, exact, min_match, kept
            )
        i = j


def _assign_in_component(
    comp: np.ndarray,
    comp_sigs: np.ndarray,
    hash_rank: np.ndarray,
    exact: bool,
    min_match: int,
    kept: np.ndarray,
) -> None:
    """Members of one component, best rank first: each is dropped in favour of the
    best-ranked kept member it is itself a duplicate of (same text, or estimate >= cutoff),
    else kept. Components alone would chain A~B~C into one cluster even when A and C share
    little; this way every drop is confirmed against the document that is kept instead."""
    keepers: list[int] = []  # positions in comp
    for pos in range(comp.size):
        i = int(comp[pos])
        choice = -1
        if exact:
            for k in keepers:
                if hash_rank[comp[k]] == hash_rank[i]:
                    choice = k
                    break
        if choice < 0 and keepers:
            hit = np.flatnonzero(matches(comp_sigs[keepers], comp_sigs[pos]) >= min_match)
            if hit.size:
                choice = keepers[int(hit[0])]
        if choice < 0:
            keepers.append(pos)
        else:
            kept[i] = int(comp[choice])


def spill_tempdir(base: Path | None) -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="dedup-bands-", dir=base)
