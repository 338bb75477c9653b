"""Reference text of Wikipedia, from whatever form a user has it in.

- a MediaWiki pages-articles dump (.xml, .xml.bz2; multistream dumps are concatenated bz2
  streams, which `bz2` reads as one): namespace-0 articles, redirects skipped, markup removed
  by mwparserfromhell (a well-kept parser with a C tokenizer: nested templates, tables,
  references and file links are nodes, not regex guesses). It is the slow path, about 0.4 to
  1.4 M characters of wikitext per second per core here (benchmarks/wikipedia_index.py), so
  the index build parses articles in a process pool.
- Parquet in the layout of the wikimedia/wikipedia dataset on the Hugging Face Hub (id, url,
  title, text): plain text already, read a record batch at a time. The fast path for a whole
  Wikipedia.
- plain .txt files: one paragraph per line.

A folder stands for the supported files in it, sorted. `iter_texts(source)` yields texts
(articles, or lines of a .txt), whose lines are the paragraphs n-grams never cross.
"""

from __future__ import annotations

import bz2
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from multiprocessing import get_context
from pathlib import Path
from typing import IO, Any

import mwparserfromhell
import pyarrow.parquet as pq

from pipeline.core.errors import ConfigError

DUMP_SUFFIXES = (".xml", ".xml.bz2")
SUFFIXES = (*DUMP_SUFFIXES, ".parquet", ".txt")
# Tags whose content is not prose a web page would copy.
DROP_TAGS = frozenset(
    {
        "ref",
        "references",
        "table",
        "gallery",
        "math",
        "chem",
        "timeline",
        "score",
        "imagemap",
        "syntaxhighlight",
        "source",
        "code",
        "graph",
        "mapframe",
        "hiero",
        "templatestyles",
    }
)
_STRAY_REF = re.compile(r"<ref\b[^>]*/>|<ref\b[^>]*>.*?</ref\s*>", re.IGNORECASE)
_RESIDUE = re.compile(r"\{\{|\}\}|\[\[|\]\]|</?ref\b|^[|!]|\{\||\|\}|\|\||=\s*\|", re.IGNORECASE)
_NON_TEXT_LINK = re.compile(
    # files, categories, and interlanguage links such as [[de:Ada]] or [[zh-yue:...]]
    r"^\s*:?\s*(?:file|image|category|media|[a-z]{2,3}(?:-[a-z]{2,8})?)\s*:",
    re.IGNORECASE,
)


def source_files(sources: Sequence[str | Path]) -> list[Path]:
    """The files a list of sources stands for; a missing or unsupported one is a ConfigError."""
    out: list[Path] = []
    for s in sources:
        p = Path(s)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.name.endswith(SUFFIXES))
            if not found:
                raise ConfigError(f"wikipedia source {p}: no {', '.join(SUFFIXES)} files in it")
            out.extend(found)
        elif p.is_file():
            if not p.name.endswith(SUFFIXES):
                raise ConfigError(f"wikipedia source {p}: not one of {', '.join(SUFFIXES)}")
            out.append(p)
        else:
            raise ConfigError(f"wikipedia source not found: {p}")
    return out


# --- dumps ------------------------------------------------------------------------------------


def _local(tag: str) -> str:
    """Tag name without its XML namespace: dumps of every export schema version parse alike."""
    return tag.rsplit("}", 1)[-1]


def _open_dump(path: Path) -> IO[bytes]:
    if path.name.endswith(".bz2"):
        return bz2.open(path, "rb")
    return open(path, "rb")


def iter_pages(dump: str | Path) -> Iterator[tuple[str, str]]:
    """(title, wikitext) of every article: namespace 0 pages that are not redirects.

    Streams with iterparse and clears each finished page, so memory stays flat on a full dump.
    """
    with _open_dump(Path(dump)) as f:
        root: ET.Element | None = None
        for event, elem in ET.iterparse(f, events=("start", "end")):
            if event == "start":
                if root is None:
                    root = elem
                continue
            if _local(elem.tag) != "page":
                continue
            ns = title = text = None
            redirect = False
            for child in elem.iter():
                name = _local(child.tag)
                if name == "ns" and ns is None:
                    ns = (child.text or "").strip()
                elif name == "title" and title is None:
                    title = child.text or ""
                elif name == "redirect":
                    redirect = True
                elif name == "text" and text is None:
                    text = child.text or ""
            elem.clear()
            if root is not None:
                root.clear()  # drop the cleared pages from the root, too
            if ns != "0" or redirect or text is None:
                continue
            if text.lstrip()[:9].upper() == "#REDIRECT":  # old dumps lack <redirect/>
                continue
            yield title or "", text


def strip_markup(wikitext: str) -> str:
    """Plain text of an article: references, tables, galleries, math and file/category links
    removed, templates dropped, links replaced by their text, one paragraph per line."""
    code = mwparserfromhell.parse(wikitext)
    drop: list[Any] = [
        t for t in code.filter_tags(recursive=True) if str(t.tag).strip().lower() in DROP_TAGS
    ]
    drop += [
        link
        for link in code.filter_wikilinks(recursive=True)
        if _NON_TEXT_LINK.match(str(link.title))
    ]
    for node in drop:
        try:
            code.remove(node)
        except ValueError:
            pass  # inside a node removed already
    text = code.strip_code(normalize=True, collapse=True)
    out = []
    for line in text.splitlines():
        # Markup the parser kept as literal text (it does so where markup is malformed): a
        # stray reference is cut out; a line still holding markup is not prose, and goes.
        line = " ".join(_STRAY_REF.sub(" ", line).split())
        if line and not _RESIDUE.search(line):
            out.append(line)
    return "\n".join(out)


def _strip_page(page: tuple[str, str]) -> str:
    return strip_markup(page[1])


def iter_articles(dump: str | Path, processes: int = 1) -> Iterator[str]:
    """Plain text of every article of a dump, markup stripped in `processes` workers (order
    kept, so a build is the same whatever the worker count)."""
    pages = iter_pages(dump)
    if processes <= 1:
        yield from map(_strip_page, pages)
        return
    with get_context("forkserver").Pool(processes) as pool:
        yield from pool.imap(_strip_page, pages, chunksize=8)


# --- plain text -------------------------------------------------------------------------------


def iter_parquet(path: Path, batch_rows: int = 1024) -> Iterator[str]:
    pf = pq.ParquetFile(path)
    if "text" not in pf.schema_arrow.names:
        raise ConfigError(f"wikipedia source {path}: Parquet without a `text` column")
    for batch in pf.iter_batches(batch_size=batch_rows, columns=["text"]):
        for text in batch.column(0).to_pylist():
            if text:
                yield text


def iter_txt(path: Path) -> Iterator[str]:
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if line:
                yield line


def iter_texts(source: Path, processes: int = 1) -> Iterator[str]:
    """Texts of one source file; their lines are paragraphs."""
    name = source.name
    if name.endswith(DUMP_SUFFIXES):
        return iter_articles(source, processes)
    if name.endswith(".parquet"):
        return iter_parquet(source)
    return iter_txt(source)
