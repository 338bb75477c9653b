"""The documents of a corpus, a record batch at a time, whatever form the corpus has.

Forms (`corpus_files` tells them apart):
- a build folder (it has dedup/part-*.parquet): the documents that make the shards, with
  id, url and text; a build folder without dedup parts falls back to its shards/;
- a shards folder (*.parquet with a `tokens` column): the `text` column when the shards have
  one (`shards.include_text`), else the GPT-2 BPE `tokens` decoded without the final EOT;
- Parquet or JSONL files (or folders of them) with a `text` column / field; `id` and `url`
  are optional, a missing id is `FILE:ROW` (file name, 0-based row).

Only the needed columns are read, `batch_rows` rows at a time: memory depends on a batch,
never on the corpus.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.core.config import TokenizerConfig
from pipeline.core.errors import ConfigError
from pipeline.core.tokenizer import EOT_ID, get_encoding

BATCH_ROWS = 1024
SUFFIXES = (".parquet", ".jsonl")


@dataclass
class CorpusBatch:
    ids: list[str]
    urls: list[str | None]
    texts: list[str]
    tokens: int | None  # GPT-2 tokens of the texts (no EOT), when the files record them


def build_parts(root: Path) -> list[Path]:
    """The dedup parts of a build folder (the documents of its shards)."""
    return sorted(p for p in (Path(root) / "dedup").glob("part-*.parquet") if p.is_file())


def corpus_files(sources: Path | str | Sequence[Path | str]) -> tuple[str, list[Path]]:
    """(form, files) of a corpus given as a build folder, a shards folder, or files/folders
    of Parquet and JSONL; form is "build", "shards" or "files"."""
    items = [Path(sources)] if isinstance(sources, str | Path) else [Path(s) for s in sources]
    if not items:
        raise ConfigError("overlap: no corpus given")
    if len(items) == 1 and items[0].is_dir():
        root = items[0]
        parts = build_parts(root)
        if parts:
            return "build", parts
        if (root / "dedup").is_dir() or (root / "shards" / "manifest.json").is_file():
            shards = sorted((root / "shards").glob("*.parquet"))
            if shards:
                return "shards", shards
        found = _files_in(root)
        if not found:
            raise ConfigError(f"overlap: no dedup parts, shards, .parquet or .jsonl in {root}")
        return "shards" if (root / "manifest.json").is_file() else "files", found
    files: list[Path] = []
    for item in items:
        if item.is_dir():
            files += _files_in(item)
        elif item.is_file() and item.name.lower().endswith(SUFFIXES):
            files.append(item)
        elif item.is_file():
            raise ConfigError(f"overlap: {item}: a corpus file must be .parquet or .jsonl")
        else:
            raise ConfigError(f"overlap: corpus not found: {item}")
    if not files:
        raise ConfigError("overlap: no .parquet or .jsonl corpus files")
    return "files", files


def _files_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(SUFFIXES))


def iter_batches(
    files: Sequence[Path],
    tokenizer: TokenizerConfig | None = None,
    batch_rows: int | None = None,
) -> Iterator[CorpusBatch]:
    """Every document of the files, in file order, as batches of at most batch_rows
    (default BATCH_ROWS)."""
    batch_rows = batch_rows or BATCH_ROWS
    for path in files:
        if path.name.lower().endswith(".jsonl"):
            yield from _jsonl_batches(path, batch_rows)
        else:
            yield from _parquet_batches(path, tokenizer, batch_rows)


def _ids(path: Path, start: int, values: list[str | None] | None, n: int) -> list[str]:
    if values is None:
        return [f"{path.name}:{start + i}" for i in range(n)]
    return [v if v else f"{path.name}:{start + i}" for i, v in enumerate(values)]


def _parquet_batches(
    path: Path, tokenizer: TokenizerConfig | None, batch_rows: int
) -> Iterator[CorpusBatch]:
    try:
        pf = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as err:
        raise ConfigError(f"overlap: cannot read {path}: {err}") from None
    names = set(pf.schema_arrow.names)
    decode = "text" not in names
    if decode and "tokens" not in names:
        raise ConfigError(f"overlap: {path} has neither a text nor a tokens column")
    # Shards: n_tokens counts the EOT that ends every document; dedup parts: it does not.
    eot_in_n_tokens = "tokens" in names
    wanted = ["id", "url", "tokens" if decode else "text"]
    if not decode and "n_tokens" in names:
        wanted.append("n_tokens")
    columns = [c for c in wanted if c in names]
    enc = get_encoding(tokenizer) if decode else None
    row = 0
    for batch in pf.iter_batches(batch_size=batch_rows, columns=columns):
        n = batch.num_rows
        cols = dict(zip(batch.schema.names, batch.columns, strict=True))
        ids = _ids(path, row, cols["id"].to_pylist() if "id" in cols else None, n)
        urls = cols["url"].to_pylist() if "url" in cols else [None] * n
        tokens: int | None = None
        if enc is not None:
            texts, tokens = _decode(cols["tokens"], enc)
        else:
            texts = [t or "" for t in cols["text"].to_pylist()]
            if "n_tokens" in cols:
                total = pc.sum(cols["n_tokens"]).as_py() or 0
                tokens = int(total) - (n if eot_in_n_tokens else 0)
        yield CorpusBatch(ids, urls, texts, tokens)
        row += n


def _decode(column: pa.Array, enc: object) -> tuple[list[str], int]:
    """Texts of a list<uint16|uint32> token column, each without its final EOT."""
    lengths = pc.fill_null(pc.list_value_length(column), 0).to_numpy(zero_copy_only=False)
    flat = pc.list_flatten(column).to_numpy(zero_copy_only=False)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    texts = []
    total = 0
    decode = enc.decode  # type: ignore[attr-defined]
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        if e > s and flat[e - 1] == EOT_ID:
            e -= 1
        total += e - s
        texts.append(decode(flat[s:e].tolist()))
    return texts, total


def _jsonl_batches(path: Path, batch_rows: int) -> Iterator[CorpusBatch]:
    ids: list[str] = []
    urls: list[str | None] = []
    texts: list[str] = []
    row = 0
    try:
        fh = path.open(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"overlap: cannot read {path}: {err}") from None
    with fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as err:
                raise ConfigError(f"overlap: {path}:{lineno}: not JSON ({err})") from None
            if not isinstance(obj, dict) or not isinstance(obj.get("text", 0), str | None):
                raise ConfigError(f'overlap: {path}:{lineno}: no string "text" field')
            text = obj["text"]
            doc_id = obj.get("id")
            ids.append(str(doc_id) if doc_id not in (None, "") else f"{path.name}:{row}")
            url = obj.get("url")
            urls.append(None if url is None else str(url))
            texts.append(text or "")
            row += 1
            if len(texts) >= batch_rows:
                yield CorpusBatch(ids, urls, texts, None)
                ids, urls, texts = [], [], []
    if texts:
        yield CorpusBatch(ids, urls, texts, None)
