"""Crowded LSH buckets: the confirmed links among thousands of documents sharing one band,
without comparing every pair.

A bucket proposes all of its pairs. What clustering needs from them is only which members end
up connected by confirmed pairs (estimate >= cutoff, i.e. at most `radius` differing
signature values, a Hamming distance, hence a metric). Leaders give that exactly:
1. members in order; each is compared with the leaders so far and linked to every leader it
   matches; one that matches none becomes a leader. A bucket of near copies has a handful of
   leaders, so this pass costs O(members x leaders).
2. a confirmed pair (x, y) that step 1 left in two groups: x matched its leader A, so
   d(y, A) <= d(y, x) + d(x, A) <= 2 radius, and |d(x, A) - d(y, A)| <= radius. For each
   leader, only members outside A's group that lie within 2 radius of A are compared, and only
   with A's members that pass the second bound. Near copies of one text are one group after
   step 1 and cost nothing here; two families of copies far apart are pruned by the first bound.
The links returned are all confirmed pairs and connect exactly the members that all confirmed
pairs of the bucket would connect.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Members compared with the leaders at once in step 1 (rows x leaders x num_perm bytes).
_BLOCK_BYTES = 1 << 24


@dataclass
class CrowdedStats:
    buckets: int = 0
    members: int = 0
    comparisons: int = 0  # signature-pair comparisons actually made
    joins: int = 0  # links found by step 2 (groups that step 1 left apart)


def matches(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Equal positions of each row of `a` with the row `b` (or row by row with `b`)."""
    return np.count_nonzero(a == b, axis=-1)


class _Forest:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        parent = self.parent
        root = i
        while parent[root] != root:
            root = parent[root]
        while parent[i] != root:
            parent[i], i = root, parent[i]
        return root

    def union(self, i: int, j: int) -> None:
        ri, rj = self.find(i), self.find(j)
        if ri != rj:
            self.parent[max(ri, rj)] = min(ri, rj)

    def roots(self) -> np.ndarray:
        return np.array([self.find(i) for i in range(len(self.parent))], dtype=np.int64)


def crowded_links(
    sigs: np.ndarray, members: np.ndarray, min_match: int, stats: CrowdedStats
) -> np.ndarray:
    """Confirmed pairs (global indices, i < j) linking `members` (sorted, with their
    signature rows `sigs`) as all their pairs would after confirmation."""
    m, num_perm = sigs.shape
    radius = num_perm - min_match
    stats.buckets += 1
    stats.members += m
    forest = _Forest(m)
    links: list[tuple[int, int]] = []
    leaders: list[int] = []
    leader_sigs = np.empty((0, num_perm), dtype=sigs.dtype)
    assigned = np.full(m, -1, dtype=np.int64)  # the first leader each member matched
    dist_to_leader = np.zeros(m, dtype=np.int64)
    block = max(1, _BLOCK_BYTES // max(1, num_perm * max(1, len(leaders))))
    start = 0
    while start < m:
        stop = min(m, start + block)
        known = len(leaders)
        # (rows, leaders) equal-value counts against the leaders existing at block start.
        eq = (sigs[start:stop, None, :] == leader_sigs[None, :, :]).sum(axis=2)
        stats.comparisons += (stop - start) * known
        for r in range(stop - start):
            x = start + r
            hit = np.flatnonzero(eq[r] >= min_match).tolist()
            if len(leaders) > known:
                # Leaders created earlier in this block.
                extra = matches(leader_sigs[known:], sigs[x])
                stats.comparisons += extra.size
                hit += [known + k for k in np.flatnonzero(extra >= min_match).tolist()]
            if not hit:
                leaders.append(x)
                leader_sigs = np.concatenate((leader_sigs, sigs[x : x + 1]))
                assigned[x] = x
                continue
            first = hit[0]
            assigned[x] = leaders[first]
            dist_to_leader[x] = num_perm - (
                int(eq[r, first]) if first < known else int(matches(sigs[x], leader_sigs[first]))
            )
            for k in hit:
                forest.union(x, leaders[k])
                links.append((x, leaders[k]))
        start = stop
        block = max(1, _BLOCK_BYTES // (num_perm * max(1, len(leaders))))
    if len(leaders) > 1:
        _link_across_groups(sigs, leaders, assigned, dist_to_leader, radius, forest, links, stats)
    if not links:
        return np.empty((0, 2), dtype=np.int64)
    local = np.array(links, dtype=np.int64)
    out = members[local]
    return np.sort(out, axis=1)


def _link_across_groups(
    sigs: np.ndarray,
    leaders: list[int],
    assigned: np.ndarray,
    dist_to_leader: np.ndarray,
    radius: int,
    forest: _Forest,
    links: list[tuple[int, int]],
    stats: CrowdedStats,
) -> None:
    num_perm = sigs.shape[1]
    roots = forest.roots()
    fresh = len(links)
    for a in leaders:
        if len(links) != fresh:  # recomputed only after step 2 has joined something
            roots, fresh = forest.roots(), len(links)
        outside = np.flatnonzero(roots != roots[a])
        if outside.size == 0:
            return
        d_out = num_perm - matches(sigs[outside], sigs[a])
        stats.comparisons += outside.size
        near = d_out <= 2 * radius
        ys, dys = outside[near], d_out[near]
        if ys.size == 0:
            continue
        group = np.flatnonzero(assigned == a)
        d_group = dist_to_leader[group]
        for y, dy in zip(ys.tolist(), dys.tolist()):
            if forest.find(y) == forest.find(a):
                continue
            cand = group[np.abs(d_group - dy) <= radius]
            if cand.size == 0:
                continue
            stats.comparisons += cand.size
            hit = np.flatnonzero(matches(sigs[cand], sigs[y]) >= num_perm - radius)
            if hit.size:
                x = int(cand[hit[0]])
                forest.union(x, y)
                links.append((x, y))
                stats.joins += 1
