"""The dedup driver: signatures per part, one global clustering, kept documents per part."""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.core.config import CorpusConfig, DedupConfig
from pipeline.core.io import read_table, write_table
from pipeline.core.ledger import Ledger, StageStats
from pipeline.core.ngrams import normalize, text_hash
from pipeline.core.sources import count_by_source
from pipeline.core.stage import run_marked
from pipeline.dedup import lsh
from pipeline.dedup.minhash import signatures
from pipeline.dedup.signature_store import SignatureFile, Signatures
from schemas.records import SIGNATURE_SCHEMA

log = logging.getLogger(__name__)

# 2: crowded LSH buckets (more than 32 documents sharing a band) are linked by all their
# confirmed pairs instead of a chain and a star, which missed pairs.
VERSION = 2
SIGNATURE_VERSION = 1
STAGE = "dedup"
SIGNATURE_STAGE = "dedup_signatures"
MISSING_TIME = np.iinfo(np.int64).max


def signature_fingerprint(cfg: DedupConfig) -> str:
    """Only what shapes a signature: a new threshold reuses every signature file."""
    blob = json.dumps({"num_perm": cfg.num_perm, "ngram": cfg.ngram, "seed": cfg.seed})
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def signature_table(docs: pa.Table, cfg: DedupConfig) -> pa.Table:
    """SIGNATURE_SCHEMA rows for a DOCS_SCHEMA table, in the same order."""
    texts = docs.column("text").to_pylist()
    norm = [normalize(t or "") for t in texts]
    sigs = signatures(norm, cfg.num_perm, cfg.seed, cfg.ngram)
    offsets = pa.array(np.arange(0, sigs.size + 1, cfg.num_perm, dtype=np.int32))
    sig_col = pa.ListArray.from_arrays(offsets, pa.array(sigs.ravel(), type=pa.uint32()))
    return pa.table(
        {
            "id": docs.column("id"),
            "text_hash": pa.array([text_hash(n) for n in norm], type=pa.string()),
            "karma": docs.column("karma").cast(pa.int32()),
            "first_seen": docs.column("first_seen").cast(SIGNATURE_SCHEMA.field("first_seen").type),
            "signature": sig_col,
        },
        schema=SIGNATURE_SCHEMA,
    )


def _signature_matrix(table: pa.Table, num_perm: int) -> np.ndarray:
    col = table.column("signature").combine_chunks()
    flat = col.flatten().to_numpy(zero_copy_only=False).astype(np.uint32, copy=False)
    if flat.size != table.num_rows * num_perm:
        raise ValueError(f"signatures of the wrong length (expected {num_perm} values)")
    return flat.reshape(table.num_rows, num_perm)


def reference_files(cfg: DedupConfig) -> list[Path]:
    """Signature and dedup-ledger files of earlier builds (the ledgers say which were dropped)."""
    out: list[Path] = []
    for ref in cfg.reference_roots:
        r = Path(ref)
        out += sorted((r / "dedup" / "signatures").glob("*.parquet"))
        out += sorted((r / "ledger" / "dedup").glob("*.parquet"))
    return out


@dataclass
class _Docs:
    """Per-document columns of every signature part, Arrow strings and numpy, no Python
    object per document; signatures go straight into their store."""

    sigs: Signatures
    ids: list[pa.Array] = field(default_factory=list)
    hashes: list[pa.Array] = field(default_factory=list)
    karma: list[np.ndarray] = field(default_factory=list)
    first_seen: list[np.ndarray] = field(default_factory=list)
    is_ref: list[np.ndarray] = field(default_factory=list)
    n: int = 0

    def append(self, t: pa.Table, num_perm: int, is_ref: bool) -> None:
        sig = _signature_matrix(t, num_perm)
        if isinstance(self.sigs, SignatureFile):
            self.sigs.append(sig)
        else:
            self.sigs[self.n : self.n + t.num_rows] = sig
        self.ids.append(t.column("id").combine_chunks())
        self.hashes.append(t.column("text_hash").combine_chunks())
        self.karma.append(t.column("karma").to_numpy(zero_copy_only=False).astype(np.int64))
        fs = t.column("first_seen").cast(pa.int64()).fill_null(MISSING_TIME)
        self.first_seen.append(fs.to_numpy(zero_copy_only=False).astype(np.int64))
        self.is_ref.append(np.full(t.num_rows, is_ref, dtype=bool))
        self.n += t.num_rows

    def cluster_input(self) -> lsh.ClusterInput:
        def cat(xs: list[np.ndarray], dtype: type) -> np.ndarray:
            return np.concatenate(xs) if xs else np.empty(0, dtype=dtype)

        sigs = self.sigs.seal() if isinstance(self.sigs, SignatureFile) else self.sigs[: self.n]
        return lsh.ClusterInput(
            ids=pa.chunked_array(self.ids, type=pa.string()),
            text_hashes=pa.chunked_array(self.hashes, type=pa.string()),
            karma=cat(self.karma, np.int64),
            first_seen=cat(self.first_seen, np.int64),
            signatures=sigs,
            is_reference=cat(self.is_ref, bool),
        )


def _reference_tables(cfg: DedupConfig) -> list[Path]:
    return [
        p
        for ref in cfg.reference_roots
        for p in sorted((Path(ref) / "dedup" / "signatures").glob("*.parquet"))
    ]


def _load_references(cfg: DedupConfig, acc: _Docs) -> None:
    for ref in cfg.reference_roots:
        r = Path(ref)
        keys = [
            read_table(p, columns=["key"]).column("key").combine_chunks()
            for p in sorted((r / "ledger" / "dedup").glob("*.parquet"))
        ]
        dropped = pa.concat_arrays(keys) if keys else pa.array([], type=pa.string())
        for p in sorted((r / "dedup" / "signatures").glob("*.parquet")):
            for t in _batches(p):
                keep = pc.invert(pc.is_in(t.column("id"), value_set=dropped))
                acc.append(t.filter(keep), cfg.num_perm, True)


def _batches(path: Path, rows: int = 16_384) -> Iterator[pa.Table]:
    """A signature file a few thousand rows at a time: a whole part's list column and its
    conversions would cost a few hundred MB that Arrow's allocator then keeps."""
    with pq.ParquetFile(path) as f:
        for batch in f.iter_batches(batch_size=rows):
            yield pa.Table.from_batches([batch])


@dataclass
class PartDecision:
    kept_id: list[str | None]  # None: the row is kept
    reason: list[str | None]


class Decisions:
    """The clustering's verdict on every row, as arrays; a part's lists are made on demand."""

    def __init__(
        self, ids: pa.ChunkedArray, res: lsh.ClusterResult, spans: dict[str, tuple[int, int]]
    ):
        self.ids = ids
        self.res = res
        self.spans = spans

    def __contains__(self, part: object) -> bool:
        return part in self.spans

    def __getitem__(self, part: str) -> PartDecision:
        s, e = self.spans[part]
        kept = self.res.kept[s:e]
        dropped = np.flatnonzero(kept != np.arange(s, e))
        kept_id: list[str | None] = [None] * (e - s)
        reason: list[str | None] = [None] * (e - s)
        names = self.ids.take(pa.array(kept[dropped])).to_pylist()
        exact = self.res.exact[s:e]
        for row, name in zip(dropped.tolist(), names):
            kept_id[row] = name
            reason[row] = "exact_duplicate" if exact[row] else "near_duplicate"
        return PartDecision(kept_id, reason)


def decide(sig_paths: dict[str, Path], cfg: DedupConfig, root: Path) -> Decisions:
    """Global clustering: for every row of every part, kept or dropped in favour of whom."""
    parts = sorted(sig_paths)
    upper = sum(pq.read_metadata(sig_paths[p]).num_rows for p in parts) + sum(
        pq.read_metadata(p).num_rows for p in _reference_tables(cfg)
    )
    spill = upper > cfg.spill_above
    with lsh.spill_tempdir(root / "dedup" if spill else None) as tmp:
        store: Signatures
        if spill:
            store = SignatureFile(Path(tmp) / "signatures.u32", cfg.num_perm)
        else:
            # Untouched pages of the upper bound (references the ledgers drop) cost nothing.
            store = np.empty((upper, cfg.num_perm), dtype=np.uint32)
        acc = _Docs(store)
        try:
            _load_references(cfg, acc)
            n_ref = acc.n
            spans: dict[str, tuple[int, int]] = {}
            for part in parts:
                start = acc.n
                for t in _batches(sig_paths[part]):
                    acc.append(t, cfg.num_perm, False)
                spans[part] = (start, acc.n)
            inp = acc.cluster_input()
            pa.default_memory_pool().release_unused()  # the readers' buffers, kept by the pool
            res = lsh.cluster(
                inp,
                cfg.threshold,
                cfg.bands,
                cfg.rows,
                cfg.confirm_z,
                cfg.exact,
                cfg.near,
                spill_dir=Path(tmp) if spill else None,
                partitions=cfg.spill_partitions,
            )
        finally:
            if isinstance(store, SignatureFile):
                store.close()
    log.info(
        "dedup: %d documents (%d references), %d candidate pairs, %d confirmed links, "
        "%d crowded buckets (%d members, %d comparisons)",
        acc.n,
        n_ref,
        res.n_candidates,
        res.n_confirmed,
        res.crowded.buckets,
        res.crowded.members,
        res.crowded.comparisons,
    )
    assert isinstance(inp.ids, pa.ChunkedArray)
    return Decisions(inp.ids, res, spans)


def _part_of(path: Path) -> str:
    return Path(path).name.split(".")[0]


def _by_source(table: pa.Table) -> dict[str, int]:
    col = table.column("source").to_pylist() if "source" in table.column_names else []
    return count_by_source(col or ["live"] * table.num_rows)


def run(filtered_parts: list[Path], root: Path, cfg: CorpusConfig) -> list[StageStats]:
    """Dedup every part of a build; returns the `dedup` stats per part, in input order."""
    root = Path(root)
    dcfg = cfg.dedup
    parts = [(Path(p), _part_of(Path(p))) for p in filtered_parts]
    sig_paths: dict[str, Path] = {}
    for path, part in parts:
        out = root / "dedup" / "signatures" / f"{part}.parquet"
        sig_paths[part] = out

        def sig_work(path: Path = path, part: str = part, out: Path = out) -> StageStats:
            table = read_table(path)
            write_table(out, signature_table(table, dcfg))
            return StageStats(
                stage=SIGNATURE_STAGE,
                part=part,
                n_in=table.num_rows,
                n_out=table.num_rows,
                outputs=[str(out.relative_to(root))],
            )

        run_marked(
            root,
            SIGNATURE_STAGE,
            part,
            [path],
            signature_fingerprint(dcfg),
            SIGNATURE_VERSION,
            sig_work,
        )

    decisions: list[Decisions] = []

    def decision(part: str) -> PartDecision:
        if not decisions:
            decisions.append(decide(sig_paths, dcfg, root))
        return decisions[0][part]

    shared_inputs = [sig_paths[p] for p in sorted(sig_paths)] + reference_files(dcfg)
    stats: list[StageStats] = []
    for path, part in parts:

        def work(path: Path = path, part: str = part) -> StageStats:
            table = read_table(path)
            dec = decision(part)
            if len(dec.kept_id) != table.num_rows:
                raise RuntimeError(f"dedup/{part}: signatures do not match the part's rows")
            ledger = Ledger(root, STAGE, part)
            ids = table.column("id").to_pylist()
            for doc, kept, reason in zip(ids, dec.kept_id, dec.reason):
                if kept is not None and reason is not None:
                    ledger.drop(doc, reason, kept)
            mask = pa.array([k is None for k in dec.kept_id], type=pa.bool_())
            out = root / STAGE / f"{part}.parquet"
            kept = table.filter(mask)
            write_table(out, kept)
            ledger_path = ledger.write()
            return StageStats(
                stage=STAGE,
                part=part,
                n_in=table.num_rows,
                n_out=table.num_rows - sum(ledger.counts.values()),
                dropped=Counter(ledger.counts),
                outputs=[str(out.relative_to(root)), str(ledger_path.relative_to(root))],
                extra={"by_source": _by_source(kept)},
            )

        stats.append(
            run_marked(root, STAGE, part, [path, *shared_inputs], dcfg.fingerprint(), VERSION, work)
        )
    return stats


def cluster(
    texts: dict[str, str], threshold: float | None = None, cfg: DedupConfig | None = None
) -> dict[str, str]:
    """Dropped id -> kept id for plain texts (no karma or dates: the smallest id wins)."""
    cfg = cfg or DedupConfig()
    if threshold is not None:
        cfg = cfg.model_copy(update={"threshold": threshold})
    ids = sorted(texts)
    norm = [normalize(texts[i]) for i in ids]
    n = len(ids)
    inp = lsh.ClusterInput(
        ids=ids,
        text_hashes=[text_hash(t) for t in norm],
        karma=np.zeros(n, dtype=np.int64),
        first_seen=np.full(n, MISSING_TIME, dtype=np.int64),
        signatures=signatures(norm, cfg.num_perm, cfg.seed, cfg.ngram),
        is_reference=np.zeros(n, dtype=bool),
    )
    res = lsh.cluster(inp, cfg.threshold, cfg.bands, cfg.rows, cfg.confirm_z, cfg.exact, cfg.near)
    return {ids[i]: ids[int(k)] for i, k in enumerate(res.kept) if int(k) != i}
