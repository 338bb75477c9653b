"""Streamed extract/filter outputs: written a row group at a time, yet byte-identical to one
write of the whole part (what the stages wrote before they streamed)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from pipeline import filter as filt
from pipeline.core.config import CorpusConfig
from pipeline.core.io import read_table, rows_to_table, write_table
from pipeline.core.rowgroups import RowGroupWriter
from pipeline.filter import driver as filter_driver
from pipeline.filter.rules import check
from schemas.records import DOCS_SCHEMA, FILTERED_SCHEMA, doc_id
from tests.test_dedup_helpers import gold_bodies


def _rows(bodies: list[str], n: int) -> list[dict[str, Any]]:
    """n documents of real text with signals that make some of them fail the rules."""
    rows = []
    for i in range(n):
        url = f"https://s{i % 13}.example.org/a/{i}"
        text = f"{bodies[i % len(bodies)]}\n{i}"
        row: dict[str, Any] = dict.fromkeys(DOCS_SCHEMA.names)
        row.update(
            id=doc_id(url),
            url=url,
            final_url=url,
            domain=f"s{i % 13}.example.org",
            host=f"s{i % 13}.example.org",
            karma=3 + i % 40,
            subreddits=["news"],
            reddit_title="",
            text=text,
            lang="en" if i % 11 else "de",
            lang_score=0.9,
            n_chars=len(text),
            n_words=len(text.split()),
            n_tokens=len(text.split()) * 13 // 10 if i % 17 else 50,
            mean_word_len=4.6,
            symbol_word_ratio=0.0,
            frac_lines_end_punct=0.8,
            dup_line_frac=0.0,
            n_stop_words=40,
            bullet_line_frac=0.0,
            ellipsis_line_frac=0.0,
            boilerplate_hits=0,
        )
        rows.append(row)
    return sorted(rows, key=lambda r: r["id"])


@pytest.fixture(scope="module")
def bodies(shared_data: Path) -> list[str]:
    return gold_bodies(shared_data, min_words=20)


@pytest.mark.parametrize("n", [0, 5, 4096, 9000])
def test_row_group_writer_gives_the_bytes_of_one_write(
    tmp_path: Path, bodies: list[str], n: int
) -> None:
    rows = _rows(bodies, n)
    whole = tmp_path / "whole.parquet"
    write_table(whole, rows_to_table(rows, DOCS_SCHEMA))
    streamed = tmp_path / "streamed.parquet"
    with RowGroupWriter(streamed, DOCS_SCHEMA) as w:
        for row in rows:
            w.add(row)
    assert w.rows == n
    assert streamed.read_bytes() == whole.read_bytes()
    assert pq.ParquetFile(streamed).metadata.num_row_groups == max(1, -(-n // 4096))


def test_row_group_writer_leaves_nothing_when_the_work_fails(
    tmp_path: Path, bodies: list[str]
) -> None:
    out = tmp_path / "out.parquet"
    with pytest.raises(RuntimeError), RowGroupWriter(out, DOCS_SCHEMA) as w:
        for row in _rows(bodies, 5000):
            w.add(row)
        raise RuntimeError("part failed")
    assert list(tmp_path.iterdir()) == []


def test_filter_streams_to_the_bytes_of_the_whole_part(
    tmp_path: Path, bodies: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = _rows(bodies, 9000)
    cfg = CorpusConfig()
    part = tmp_path / "docs" / "part-00000.parquet"
    write_table(part, rows_to_table(rows, DOCS_SCHEMA))
    # The whole-part reference: every row judged, the kept ones written in one go.
    kept = [r for r in read_table(part).to_pylist() if check(r, cfg.filter) is None]
    for r in kept:
        r["wiki_stripped_chars"] = None
    ref = io.BytesIO()
    pq.write_table(
        rows_to_table(kept, FILTERED_SCHEMA),
        ref,
        compression="zstd",
        row_group_size=4096,
        write_statistics=True,
    )
    assert 4096 < len(kept) < len(rows)
    stats = filt.run_part(part, tmp_path, cfg)
    out = tmp_path / "filtered" / "part-00000.parquet"
    assert (stats.n_in, stats.n_out) == (9000, len(kept))
    assert sum(stats.dropped.values()) == 9000 - len(kept)
    assert out.read_bytes() == ref.getvalue()
    # Another read batch size: the same bytes.
    monkeypatch.setattr(filter_driver, "READ_BATCH", 300)
    filt.run_part(part, tmp_path, cfg, force=True)
    assert out.read_bytes() == ref.getvalue()
