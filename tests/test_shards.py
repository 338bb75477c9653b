"""Shards without a global concatenation: every document once, in the shard and split its id
says, tokens that decode to its text, the same bytes however the input is partitioned or
spilled, rows taken batch by batch, and a dataset `datasets` reads."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import shards
from pipeline.core.config import CorpusConfig
from pipeline.core.tokenizer import EOT_ID, get_encoding
from pipeline.shards import gather, spill
from pipeline.shards.assign import is_val, shard_count, shard_index
from pipeline.shards.gather import take_rows
from schemas.records import doc_id
from tests.test_dedup_helpers import doc_row, gold_bodies, write_part


@pytest.fixture(scope="module")
def docs(shared_data: Path) -> list[dict]:
    """181-ish real article bodies (and halves of them, for more rows) with real-style ids."""
    bodies = gold_bodies(shared_data, min_words=20)
    rows = []
    for i, body in enumerate(bodies + [b[: len(b) // 2] for b in bodies]):
        url = f"https://site{i % 7}.example.com/story/{i}"
        row = doc_row(doc_id(url), body, karma=3 + i % 50)
        row.update(url=url, domain=f"site{i % 7}.example.com", lang="en", subreddits=["news"])
        rows.append(row)
    return rows


def _cfg(**shards_cfg) -> CorpusConfig:
    base = {"include_text": True, "max_rows_per_shard": 60, "row_group_size": 16}
    base.update(shards_cfg)
    return CorpusConfig.model_validate(
        {"shards": {"val_fraction": 0.1, **base}, "runner": {"max_workers": 2}}
    )


def _parts(root: Path, rows: list[dict], n_parts: int) -> list[Path]:
    return [
        write_part(root / "dedup" / f"part-{k:05d}.parquet", rows[k::n_parts])
        for k in range(n_parts)
    ]


def _shard_bytes(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / "shards").iterdir())}


def test_every_document_once_in_the_shard_its_id_names(tmp_path: Path, docs: list[dict]) -> None:
    cfg = _cfg()
    stats = shards.run(_parts(tmp_path, docs, 3), tmp_path, cfg)
    n_val = sum(is_val(d["id"], 0.1) for d in docs)
    counts = {"train": shard_count(len(docs) - n_val, 60), "val": shard_count(n_val, 60)}
    assert 0 < n_val < len(docs) and counts["train"] >= 3
    manifest = json.loads((tmp_path / "shards" / "manifest.json").read_text())
    assert len(manifest["shards"]) == stats.extra["shards"] == sum(counts.values())
    by_id = {d["id"]: d for d in docs}
    enc = get_encoding()
    seen: list[str] = []
    for entry in manifest["shards"]:
        split, index = entry["split"], int(entry["path"].split("-")[1])
        table = pq.read_table(tmp_path / "shards" / entry["path"])
        assert table.num_rows == entry["rows"]
        assert table.schema.field("tokens").type.value_type == pa.uint16()
        assert sum(table.column("n_tokens").to_pylist()) == entry["tokens"]
        for row in table.to_pylist():
            doc = by_id[row["id"]]
            assert is_val(row["id"], 0.1) == (split == "val")
            assert shard_index(row["id"], cfg.shards.seed, counts[split]) == index
            assert row["tokens"][-1] == EOT_ID and EOT_ID not in row["tokens"][:-1]
            assert enc.decode(row["tokens"][:-1]) == doc["text"] == row["text"]
            assert (row["url"], row["karma"], row["n_tokens"]) == (
                doc["url"],
                doc["karma"],
                len(row["tokens"]),
            )
            seen.append(row["id"])
    assert sorted(seen) == sorted(by_id)
    assert stats.n_in == stats.n_out == len(docs) == manifest["totals"]["rows"]
    assert not (tmp_path / "_spill").exists()


def test_same_bytes_whatever_the_partition_workers_and_spill_sizes(
    tmp_path: Path, docs: list[dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    shards.run(_parts(a, docs, 3), a, _cfg())
    # Other parts (5, rows in reverse order), one thread, tiny spill batches and row groups
    # split by bytes: the spill is in many more chunks; the shards must not notice.
    monkeypatch.setattr(spill, "FLUSH_ROWS", 3)
    monkeypatch.setattr(spill, "FLUSH_BYTES", 20_000)
    cfg_b = _cfg().model_copy(
        update={"runner": _cfg().runner.model_copy(update={"max_workers": 1})}
    )
    shards.run(_parts(b, docs[::-1], 5), b, cfg_b)
    assert _shard_bytes(a) == _shard_bytes(b)
    # A different seed spreads and orders the documents differently.
    c = tmp_path / "c"
    shards.run(_parts(c, docs, 3), c, _cfg(seed=99))
    assert _shard_bytes(c).keys() == _shard_bytes(a).keys()
    assert (
        _shard_bytes(c)["train-00000-of-00006.parquet"]
        != _shard_bytes(a)["train-00000-of-00006.parquet"]
    )


def test_row_groups_close_at_the_byte_cap(
    tmp_path: Path, docs: list[dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    shards.run(_parts(a, docs, 2), a, _cfg(row_group_size=1000, max_rows_per_shard=1000))
    monkeypatch.setattr(gather, "MAX_GROUP_BYTES", 50_000)
    shards.run(_parts(b, docs, 2), b, _cfg(row_group_size=1000, max_rows_per_shard=1000))
    name = "train-00000-of-00001.parquet"
    fa, fb = pq.ParquetFile(a / "shards" / name), pq.ParquetFile(b / "shards" / name)
    assert fa.metadata.num_row_groups == 1
    sizes = [
        sum(
            4 * n + len(t.encode())
            for n, t in zip(
                fb.read_row_group(g, columns=["n_tokens"]).column(0).to_pylist(),
                fb.read_row_group(g, columns=["text"]).column(0).to_pylist(),
                strict=True,
            )
        )
        for g in range(fb.metadata.num_row_groups)
    ]
    assert fb.metadata.num_row_groups > 5
    # Each group but the last is closed by the row that would have passed the cap.
    assert all(s <= 50_000 or fb.metadata.row_group(g).num_rows == 1 for g, s in enumerate(sizes))
    assert fa.read().equals(fb.read())


def test_take_rows_gathers_across_chunks_like_take() -> None:
    rng = np.random.default_rng(0)
    texts = [("x" * int(rng.integers(0, 50))) + str(i) for i in range(1000)]
    table = pa.concat_tables(
        pa.table({"i": pa.array(range(lo, hi)), "text": texts[lo:hi]})
        for lo, hi in zip(range(0, 1000, 37), [*range(37, 1000, 37), 1000], strict=True)
    )
    assert table.column("text").num_chunks == 28
    idx = rng.permutation(1000)[:600]
    got = take_rows(table, idx)
    assert got.column("i").to_pylist() == idx.tolist()
    assert got.column("text").to_pylist() == [texts[i] for i in idx]
    assert take_rows(table, idx[:0]).num_rows == 0


def test_split_is_stable_when_the_corpus_grows(tmp_path: Path, docs: list[dict]) -> None:
    small, big = tmp_path / "small", tmp_path / "big"
    shards.run(_parts(small, docs[:100], 2), small, _cfg())
    shards.run(_parts(big, docs, 4), big, _cfg())

    def val_ids(root: Path) -> set[str]:
        return {
            i
            for p in (root / "shards").glob("val-*.parquet")
            for i in pq.read_table(p, columns=["id"]).column("id").to_pylist()
        }

    assert val_ids(small) == {d["id"] for d in docs[:100] if is_val(d["id"], 0.1)}
    assert val_ids(small) < val_ids(big)


def test_datasets_reads_the_shards(tmp_path: Path, docs: list[dict]) -> None:
    datasets = pytest.importorskip("datasets")
    shards.run(_parts(tmp_path, docs, 3), tmp_path, _cfg())
    ds = datasets.load_dataset(
        "parquet", data_dir=str(tmp_path / "shards"), cache_dir=str(tmp_path / "hf")
    )
    manifest = json.loads((tmp_path / "shards" / "manifest.json").read_text())
    assert ds["train"].num_rows == manifest["totals"]["train_rows"]
    assert ds["validation"].num_rows == manifest["totals"]["val_rows"]
    ids = list(ds["train"]["id"]) + list(ds["validation"]["id"])
    assert sorted(ids) == sorted(d["id"] for d in docs)


def test_verify_notices_one_changed_byte_with_size_and_mtime_restored(
    tmp_path: Path, docs: list[dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = _parts(tmp_path, docs, 3)
    shards.run(parts, tmp_path, _cfg())
    good = _shard_bytes(tmp_path)
    victim = tmp_path / "shards" / "train-00002-of-00006.parquet"
    st = victim.stat()
    raw = bytearray(victim.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    victim.write_bytes(bytes(raw))
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert victim.stat().st_size == st.st_size
    # The cheap check trusts size + mtime (that is what makes a no-op rebuild take seconds)...
    assert shards.run(parts, tmp_path, _cfg()).extra.get("skipped") is True
    assert _shard_bytes(tmp_path) != good
    # ...--verify hashes every file, finds the changed byte and rebuilds the shards.
    monkeypatch.setenv("WEBTEXT_VERIFY", "1")
    assert not shards.run(parts, tmp_path, _cfg()).extra.get("skipped")
    assert _shard_bytes(tmp_path) == good
    assert shards.run(parts, tmp_path, _cfg()).extra.get("skipped") is True
