"""Wikipedia by content: reference sources, the n-gram index, paragraph stripping, CLIs."""

from __future__ import annotations

import bz2
import json
import random
import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.core.config import WikipediaConfig, load_config, parse_config
from pipeline.core.errors import ConfigError
from pipeline.core.ngrams import ngram_hashes, normalize
from pipeline.filter import wiki_index, wiki_sources
from pipeline.filter.wiki_strip import strip_paragraphs
from tests.test_dedup_helpers import gold_bodies

DUMP = "wikipedia/enwiki-sample-pages-articles.xml.bz2"
N = WikipediaConfig().ngram
THRESHOLD = WikipediaConfig().paragraph_overlap
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dump(shared_data: Path) -> Path:
    return shared_data / DUMP


@pytest.fixture(scope="module")
def articles(dump: Path) -> list[str]:
    return list(wiki_sources.iter_articles(dump))


@pytest.fixture(scope="module")
def index_dir(dump: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wiki") / "index"
    wiki_index.build_index([dump], out, N, processes=2)
    return out


def _paragraphs(articles: list[str], min_words: int) -> list[str]:
    return [p for a in articles for p in a.split("\n") if len(p.split()) >= min_words]


def test_parser_yields_exactly_the_articles(dump: Path, articles: list[str]) -> None:
    with bz2.open(dump) as f:
        xml = f.read().decode("utf-8")
    pages = re.findall(r"<page>.*?</page>", xml, re.DOTALL)
    expected = [
        re.search(r"<title>(.*?)</title>", p).group(1)  # type: ignore[union-attr]
        for p in pages
        if "<ns>0</ns>" in p and "<redirect" not in p
    ]
    assert len(pages) == 206 and len(expected) == 106
    titles = [t for t, _ in wiki_sources.iter_pages(dump)]
    assert titles == [t.replace("&amp;", "&").replace("&quot;", '"') for t in expected]
    assert len(articles) == 106
    for text in articles:  # every article yields text, and no markup survives in it
        assert text
        assert "{{" not in text and "[[" not in text and "<ref" not in text
        assert "|}" not in text and "thumb|" not in text


def test_strip_markup() -> None:
    src = (
        "{{Infobox person|name=X|birth={{birth date|1900|1|1}}}}\n"
        "'''Ada''' was a [[mathematician|math person]] from [[London]].<ref>{{cite|a}}</ref>"
        " She wrote<ref name=n/> notes.<!-- hidden -->\n"
        "== Early life ==\n"
        "{| class=wikitable\n|-\n| cell || cell\n|}\n"
        "[[File:Ada.jpg|thumb|A [[portrait]] of Ada]]\n"
        "* a <small>listed</small> item\n"
        "See [https://example.org the site].\n"
        "[[Category:Mathematicians]]\n[[de:Ada]]"
    )
    assert wiki_sources.strip_markup(src) == (
        "Ada was a math person from London. She wrote notes.\n"
        "Early life\n"
        "a listed item\n"
        "See the site."
    )


def test_index_equals_the_naive_computation(articles: list[str], index_dir: Path) -> None:
    index = wiki_index.load_index(index_dir)
    lines = [normalize(p) for a in articles for p in a.split("\n")]
    naive = np.unique(np.concatenate([ngram_hashes(x, N) for x in lines if x]))
    assert np.array_equal(np.asarray(index.hashes), naive)
    meta = wiki_index.read_meta(index_dir)
    assert meta["ngrams"] == naive.size and meta["ngram"] == N and meta["texts"] == 106
    assert meta["sha256"] == __import__("hashlib").sha256(naive.astype("<u8").tobytes()).hexdigest()


def test_sources_and_spills_give_the_same_index(
    articles: list[str], index_dir: Path, tmp_path: Path
) -> None:
    """The dump, its text as wikimedia/wikipedia Parquet, and as .txt paragraphs: one index,
    also when the external sort spills every few thousand hashes."""
    want = wiki_index.read_meta(index_dir)["sha256"]
    pq.write_table(
        pa.table(
            {
                "id": [str(i) for i in range(len(articles))],
                "url": [f"https://en.wikipedia.org/wiki?curid={i}" for i in range(len(articles))],
                "title": [f"t{i}" for i in range(len(articles))],
                "text": articles,
            }
        ),
        tmp_path / "train-00000-of-00001.parquet",
    )
    (tmp_path / "txt").mkdir()
    (tmp_path / "txt" / "wiki.txt").write_text("\n".join(articles) + "\n", encoding="utf-8")
    for name, sources, buffer in (
        ("parquet", [tmp_path / "train-00000-of-00001.parquet"], wiki_index.BUFFER),
        ("txt-folder", [tmp_path / "txt"], wiki_index.BUFFER),
        ("spilled", [tmp_path / "txt" / "wiki.txt"], 5_000),
    ):
        meta = wiki_index.build_index(sources, tmp_path / name, N, buffer=buffer)
        assert meta["sha256"] == want, name
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no leftovers


def _edit(paragraph: str, vocab: list[str], rng: random.Random, rate: float = 0.1) -> str:
    words = paragraph.split()
    for i in rng.sample(range(len(words)), int(len(words) * rate)):
        words[i] = rng.choice(vocab)
    return " ".join(words)


def test_copied_paragraphs_are_stripped_and_independent_text_is_not(
    shared_data: Path, articles: list[str], index_dir: Path, tmp_path: Path
) -> None:
    """Must-show 1: 300 pages of real news text with 1-3 Wikipedia paragraphs copied, edited
    (10% of words changed) or quoted lose exactly those paragraphs (precision and recall
    >= 0.95); pages of prose on the same topics that the reference does not hold lose nothing.
    """
    index = wiki_index.load_index(index_dir)
    news = [p for b in gold_bodies(shared_data) for p in b.split("\n") if len(p.split()) >= 20]
    vocab = sorted({w for p in news for w in p.split()})
    paras = _paragraphs(articles, 40)
    rng = random.Random(7)
    pages: list[str] = []
    planted: list[set[int]] = []
    kinds: dict[str, int] = {"copy": 0, "edit": 0, "quote": 0}
    for _ in range(300):
        lines = rng.sample(news, 6)
        where: set[int] = set()
        for _ in range(rng.randint(1, 3)):
            p = rng.choice(paras)
            kind = rng.choice(list(kinds))
            kinds[kind] += 1
            text = {
                "copy": p,
                "edit": _edit(p, vocab, rng) if kind == "edit" else p,
                "quote": f'As Wikipedia puts it: "{p}" (retrieved in 2017)',
            }[kind]
            pos = rng.randint(0, len(lines))
            lines.insert(pos, text)
            where = {i + 1 if i >= pos else i for i in where} | {pos}
        pages.append("\n".join(lines))
        planted.append(where)
    results = strip_paragraphs(pages, index, N, THRESHOLD)
    tp = sum(len(set(r.removed) & w) for r, w in zip(results, planted, strict=True))
    fp = sum(len(set(r.removed) - w) for r, w in zip(results, planted, strict=True))
    fn = sum(len(w - set(r.removed)) for r, w in zip(results, planted, strict=True))
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    assert min(kinds.values()) > 50
    assert precision >= 0.95 and recall >= 0.95, (precision, recall)
    for page, res, where in zip(pages, results, planted, strict=True):
        kept = [x for i, x in enumerate(page.split("\n")) if i not in set(res.removed)]
        assert res.text == "\n".join(kept)
    # Same topics, written independently: the reference holds half of the articles; pages made
    # of the other half's paragraphs and news text lose nothing.
    half = wiki_index.build_index(
        [_write_txt(tmp_path / "half.txt", articles[::2])], tmp_path / "half", N
    )
    assert half["texts"] > 0
    half_index = wiki_index.load_index(tmp_path / "half")
    others = _paragraphs(articles[1::2], 40)
    indep = ["\n".join(rng.sample(others, 3) + rng.sample(news, 3)) for _ in range(300)]
    lost = [r for r in strip_paragraphs(indep, half_index, N, THRESHOLD) if r.removed]
    assert lost == []
    # ...while the half the reference holds is found in the same kind of page.
    held = _paragraphs(articles[::2], 40)
    found = strip_paragraphs(
        ["\n".join(rng.sample(held, 2)) for _ in range(50)], half_index, N, 0.2
    )
    assert all(len(r.removed) == 2 for r in found)


def _write_txt(path: Path, texts: list[str]) -> Path:
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    return path


def test_overlap_and_removal_are_exact(index_dir: Path, articles: list[str]) -> None:
    """The figures equal a brute-force count over sets of hashes, line by line."""
    index = wiki_index.load_index(index_dir)
    members = set(np.asarray(index.hashes).tolist())
    rng = random.Random(3)
    paras = _paragraphs(articles, 20)
    doc = "\n".join(
        [
            "Short line.",
            rng.choice(paras),
            "An invented paragraph about zorbs and quibbles that nobody ever wrote before today.",
            _edit(rng.choice(paras), ["zorb", "quibble"], rng, 0.3),
            "",
        ]
    )
    hits = total = 0
    removed = []
    for i, line in enumerate(doc.split("\n")):
        h = ngram_hashes(normalize(line), N).tolist()
        found = sum(x in members for x in h)
        hits, total = hits + found, total + len(h)
        if h and found >= THRESHOLD * len(h):
            removed.append(i)
    (res,) = strip_paragraphs([doc], index, N, THRESHOLD)
    assert res.removed == removed and 1 in removed and 0 not in removed and 2 not in removed
    assert res.overlap == pytest.approx(hits / total)
    assert strip_paragraphs(["", "a b c"], index, N, THRESHOLD)[0].overlap == 0.0


def test_ensure_index_builds_once_for_parallel_parts(
    dump: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    txt = _write_txt(tmp_path / "ref.txt", [" ".join(f"w{i}" for i in range(50))])
    calls: list[int] = []
    real = wiki_index.build_index

    def counting(*a, **k):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(wiki_index, "build_index", counting)
    got: list[Path] = []
    threads = [
        threading.Thread(
            target=lambda: got.append(
                wiki_index.ensure_index([str(txt)], None, N, tmp_path / "out")
            )
        )
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(set(got)) == 1
    assert wiki_index.read_meta(got[0])["ngrams"] == 50 - N + 1
    txt.write_text(" ".join(f"v{i}" for i in range(60)) + "\n")  # a changed source
    again = wiki_index.ensure_index([str(txt)], None, N, tmp_path / "out")
    assert again != got[0] and len(calls) == 2
    # a prebuilt index is used as it is, and must hold the configured n
    assert wiki_index.ensure_index([], str(again), N, tmp_path / "x") == again
    with pytest.raises(ConfigError, match="holds"):
        wiki_index.ensure_index([], str(again), N + 1, tmp_path / "x")
    with pytest.raises(ConfigError, match="not found"):
        wiki_index.ensure_index([str(tmp_path / "nope.xml.bz2")], None, N, tmp_path / "out")


def test_hashes_do_not_depend_on_the_interpreter() -> None:
    code = (
        "from pipeline.core.ngrams import ngram_hashes;"
        "print(ngram_hashes('a b c d e f g h i j k l m n o', 13).tolist())"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
            cwd=REPO,
        ).stdout
        for seed in ("1", "2")
    }
    assert outs == {str(ngram_hashes("a b c d e f g h i j k l m n o", 13).tolist()) + "\n"}


def test_cli_index_and_strip(articles: list[str], tmp_path: Path) -> None:
    ref = _write_txt(tmp_path / "ref.txt", articles[:10])
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.cli",
            "wiki-index",
            str(ref),
            "--out",
            str(tmp_path / "i"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    copied = _paragraphs(articles[:10], 40)[0]
    docs = [
        {
            "id": "a",
            "text": f"Our own opening words here, written by us alone for this page today.\n{copied}\nOur own closing words, also written by us alone for this page today.",
        },
        {"id": "b", "text": "Nothing from the reference in this one at all, no."},
    ]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(d) + "\n" for d in docs))
    dst = tmp_path / "out.jsonl"
    cmd = [sys.executable, "-m", "pipeline.cli", "wiki-strip", "--index", str(tmp_path / "i")]
    run = subprocess.run(
        [*cmd, str(src), str(dst)], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert run.returncode == 0, run.stderr
    out = [json.loads(x) for x in dst.read_text().splitlines()]
    assert [o["id"] for o in out] == ["a", "b"]
    assert out[0]["removed_paragraphs"] == [1]
    assert (
        out[0]["text"]
        == "Our own opening words here, written by us alone for this page today.\nOur own closing words, also written by us alone for this page today."
    )
    assert 0.5 < out[0]["wiki_overlap"] < 1.0
    assert out[1]["removed_paragraphs"] == [] and out[1]["wiki_overlap"] == 0.0
    assert out[1]["text"] == docs[1]["text"]
    src.write_text('{"id": "x"}\n')
    run = subprocess.run(
        [*cmd, str(src), str(dst)], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert run.returncode == 2 and "in.jsonl:1" in run.stderr


def test_config(tmp_path: Path) -> None:
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(
        "wikipedia:\n  sources: [data/enwiki.xml.bz2]\n  ngram: 13\n"
        "decontaminate:\n  eval_sets: {lambada: evals/lambada.jsonl}\n"
    )
    cfg = load_config(cfg_file)
    assert cfg.wikipedia.sources == [str(tmp_path / "data" / "enwiki.xml.bz2")]
    assert cfg.wikipedia.enabled and cfg.wikipedia.ngram == 13
    assert cfg.decontaminate.eval_sets == {"lambada": str(tmp_path / "evals" / "lambada.jsonl")}
    assert not load_config(None).wikipedia.enabled
    with pytest.raises(ConfigError, match="moved to wikipedia.sources"):
        parse_config({"filter": {"wikipedia_dump": "x.xml"}})


def test_normalize_lines_equals_normalize_per_line() -> None:
    from pipeline.core.ngrams import normalize_lines

    rng = random.Random(1)
    chars = "abc XYZ\n\t.,;é“”ﬁ①\u2028\u00a0\u0301\x1c😀Ⅸ"
    for _ in range(5000):
        text = "".join(rng.choice(chars) for _ in range(rng.randint(0, 40)))
        assert normalize_lines(text) == [normalize(x) for x in text.split("\n")], repr(text)


def test_preflight_names_missing_references(tmp_path: Path) -> None:
    from pipeline.preflight import preflight

    dump = tmp_path / "RS_2017-01.ndjson"
    dump.write_text("")
    base = {"out_dir": str(tmp_path / "out"), "harvest": {"inputs": [str(dump)]}}
    preflight(parse_config(base))
    for extra, message in (
        ({"wikipedia": {"sources": [str(tmp_path / "enwiki.xml.bz2")]}}, "not found"),
        ({"wikipedia": {"index": str(tmp_path / "idx")}}, "not a webtext Wikipedia index"),
        ({"decontaminate": {"eval_sets": {"ptb": str(tmp_path / "ptb.txt")}}}, "file not found"),
        ({"overlap": {"eval_sets": {"ptb": str(tmp_path / "ptb.txt")}}}, "file not found"),
    ):
        with pytest.raises(ConfigError, match=message):
            preflight(parse_config({**base, **extra}))
    assert not (tmp_path / "out").exists()  # nothing written before the checks pass


def _line_ngrams_one_by_one(texts: list[str], n: int) -> tuple[list[int], list[int]]:
    """The definition: normalize_lines, then batch_ngram_hashes, one line at a time."""
    from pipeline.core.ngrams import PowerTables, batch_ngram_hashes, normalize_lines

    hashes: list[int] = []
    lines: list[int] = []
    line = 0
    for text in texts:
        for norm in normalize_lines(text):
            h, _ = batch_ngram_hashes([norm], n, PowerTables())
            hashes.extend(int(x) for x in h)
            lines.extend([line] * h.size)
            line += 1
    return hashes, lines


def _tricky_texts(seed: int, count: int) -> list[str]:
    """Random texts over the characters that make normalization hard: case that expands
    (ß, İ, ŉ, ǰ, ﬁ), compatibility forms (①, ½, …, Ⅸ, fullwidth, Arabic presentation forms),
    combining marks after a newline or a space, every kind of whitespace, astral letters that
    have case (Deseret) and astral symbols, a lone surrogate, punctuation."""
    rng = random.Random(seed)
    chars = (
        "abc XYZ Straße ẞ İi ŉ ǰ ﬁ ① ½ … Ⅸ Ａｂ ﺍﻟ ΣΑΣ ς é e\u0301 \u0301 \u0308"
        "\n\n\t\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\u00a0\u1680\u2003\u2028\u2029\u202f\u3000"
        ".,;:!?'\"“”‘’—-()[]{}<>@#$%^&*_+=/\\|~`"
        "\U00010400\U00010428😀𝔘\ud800"
    )
    out = []
    for _ in range(count):
        out.append("".join(rng.choice(chars) for _ in range(rng.randint(0, 60))))
    return out


def test_line_ngram_hashes_equal_the_definition_on_real_and_tricky_text(
    shared_data: Path,
) -> None:
    """The vectorized path of paragraph stripping (`line_ngram_hashes`: one normalization and
    hashing pass over a batch) gives exactly the hashes and lines of normalize_lines +
    batch_ngram_hashes, one line at a time: on real news bodies, sentences in 67 languages
    and random texts over the hard characters."""
    from pipeline.core.ngrams import PowerTables, line_ngram_hashes, normalize_lines

    tsv = (shared_data / "langid/sentences-open.tsv").read_text(encoding="utf-8").splitlines()[1:]
    by_lang: dict[str, list[str]] = {}
    for row in tsv:
        lang, _, sentence = row.partition("\t")
        by_lang.setdefault(lang, []).append(sentence)
    multilingual = ["\n".join(s[:40]) for _, s in sorted(by_lang.items())]
    assert len(multilingual) >= 60
    tricky = _tricky_texts(7, 3000)
    for texts, n in (
        (gold_bodies(shared_data)[:60], 8),
        (multilingual, 8),
        (multilingual, 3),
        (tricky, 2),
        (tricky, 1),
        ([], 8),
        (["", "\n\n", "one two"], 2),
    ):
        hashes, line, per_text = line_ngram_hashes(texts, n, PowerTables())
        want_hashes, want_lines = _line_ngrams_one_by_one(texts, n)
        assert hashes.tolist() == want_hashes
        assert line.tolist() == want_lines
        assert per_text.tolist() == [len(normalize_lines(t)) for t in texts]


@pytest.mark.parametrize("size", [0, 1, 7, 8, 9, 1000, 300_000])
def test_index_membership_equals_a_set(size: int, tmp_path: Path) -> None:
    """WikiIndex.contains (directory + bucket scan) answers exactly as a set, for present and
    absent hashes, the extreme values and buckets that are empty or crowded; and the directory
    written by the build equals the one computed from the hashes."""
    rng = np.random.default_rng(size)
    hashes = rng.integers(0, 2**64 - 1, size, dtype=np.uint64, endpoint=True)
    if size >= 1000:  # a crowded bucket: 40 neighbours, and the extremes
        hashes[:40] = np.uint64(2**63) + np.arange(40, dtype=np.uint64)
        hashes[40], hashes[41] = 0, 2**64 - 1
    index = wiki_index.WikiIndex.from_hashes(hashes)
    absent = rng.integers(0, 2**64 - 1, 5000, dtype=np.uint64, endpoint=True)
    extremes = np.array([0, 1, 2**63, 2**63 + 39, 2**63 + 40, 2**64 - 2, 2**64 - 1], np.uint64)
    queries = np.concatenate([hashes, absent, extremes, hashes[: size // 2]])
    rng.shuffle(queries)
    members = set(hashes.tolist())
    assert index.contains(queries).tolist() == [q in members for q in queries.tolist()]
    txt = tmp_path / "t.txt"
    words = [f"w{i}" for i in range(size + N - 1)]
    txt.write_text(" ".join(words) + "\n" if size else "", encoding="utf-8")
    wiki_index.build_index([txt], tmp_path / "idx", N)
    built = wiki_index.load_index(tmp_path / "idx")
    assert built.size == size
    want = wiki_index.build_directory(np.asarray(built.hashes), built.bits)
    assert np.array_equal(np.asarray(built.directory), want)
    assert built.contains(np.asarray(built.hashes)).all()
