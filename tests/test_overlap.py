"""`webtext overlap`: GPT-2's 8-gram train/test overlap audit, against brute force.

The reference here is pure Python: words by str.isalnum() one character at a time, n-grams as
tuples of strings in sets, no hashing. The audit must give exactly its figures.
"""

from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.core.config import parse_config
from pipeline.core.tokenizer import EOT_ID, get_encoding
from pipeline.overlap import audit, markdown, normalize, normalized_lines, run
from pipeline.overlap import corpus as corpus_mod
from pipeline.overlap import driver as driver_mod

# --- the reference ---------------------------------------------------------------------------


def ref_words(line: str) -> list[str]:
    words, cur = [], ""
    for ch in line.lower():
        if ch.isalnum():
            cur += ch
        elif cur:
            words.append(cur)
            cur = ""
    if cur:
        words.append(cur)
    return words


def ref_grams(text: str, n: int) -> set[tuple[str, ...]]:
    grams: set[tuple[str, ...]] = set()
    for line in text.splitlines():
        w = ref_words(line)
        grams.update(tuple(w[i : i + n]) for i in range(len(w) - n + 1))
    return grams


def brute(
    docs: list[dict[str, Any]], sets: dict[str, list[tuple[int, str]]], n: int, top: int
) -> dict[str, Any]:
    """The audit's eval_sets figures by sets of tuples. sets: name -> [(line number, text)]."""
    doc_grams = [ref_grams(d["text"] or "", n) for d in docs]
    corpus = set().union(*doc_grams) if doc_grams else set()
    out: dict[str, Any] = {}
    for name, examples in sets.items():
        ex_grams = [ref_grams(t, n) for _, t in examples]
        distinct = set().union(*ex_grams) if ex_grams else set()
        found = distinct & corpus
        hits = [(len(g & distinct), d["id"], d.get("url")) for g, d in zip(doc_grams, docs)]
        ranked = sorted((h for h in hits if h[0]), key=lambda h: (-h[0], h[1]))[:top]
        out[name] = {
            "ngrams": len(distinct),
            "ngrams_found": len(found),
            "percent": round(100 * len(found) / len(distinct), 2) if distinct else 0.0,
            "examples": len(examples),
            "examples_with_overlap": sum(1 for g in ex_grams if g & corpus),
            "overlapping_lines": [ln for (ln, _), g in zip(examples, ex_grams) if g & corpus],
            "top_documents": [{"id": i, "url": u, "ngrams": c} for c, i, u in ranked],
        }
    return out


def figures(result: dict[str, Any], with_ids: bool = True) -> dict[str, Any]:
    keep = ["ngrams", "ngrams_found", "percent", "examples", "examples_with_overlap"]
    keep.append("overlapping_lines")
    out = {}
    for name, e in result["eval_sets"].items():
        out[name] = {k: e[k] for k in keep}
        tops = e["top_documents"]
        out[name]["top_documents"] = tops if with_ids else [t["ngrams"] for t in tops]
    return out


# --- writing inputs ----------------------------------------------------------------------------


def write_txt_set(path: Path, examples: list[str], rng: random.Random) -> list[tuple[int, str]]:
    """One example per line, with blank and whitespace-only lines between some."""
    lines, numbered = [], []
    for ex in examples:
        if rng.random() < 0.2:
            lines.append(rng.choice(["", "   ", "\t"]))
        lines.append(ex)
        numbered.append((len(lines), ex))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [(ln, t) for ln, t in numbered if t.strip()]


def write_jsonl_set(path: Path, examples: list[str]) -> list[tuple[int, str]]:
    path.write_text(
        "".join(json.dumps({"text": t, "label": i}) + "\n" for i, t in enumerate(examples)),
        encoding="utf-8",
    )
    return [(i + 1, t) for i, t in enumerate(examples) if t.strip()]


def write_parquet(path: Path, docs: list[dict[str, Any]], **extra: list[Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cols: dict[str, Any] = {k: [d[k] for d in docs] for k in docs[0]}
    cols.update(extra)
    pq.write_table(pa.table(cols), path)


def write_build(root: Path, docs: list[dict[str, Any]], parts: int = 2) -> Path:
    enc = get_encoding()
    step = -(-len(docs) // parts)
    for p in range(parts):
        chunk = docs[p * step : (p + 1) * step]
        n_tokens = [len(enc.encode_ordinary(d["text"])) for d in chunk]
        write_parquet(root / "dedup" / f"part-{p:05d}.parquet", chunk, n_tokens=n_tokens)
    (root / "dedup" / "signatures").mkdir(exist_ok=True)
    return root


def write_shards(folder: Path, docs: list[dict[str, Any]], text: bool) -> Path:
    enc = get_encoding()
    tokens = [enc.encode_ordinary(d["text"]) + [EOT_ID] for d in docs]
    half = len(docs) // 2
    for i, (lo, hi) in enumerate([(0, half), (half, len(docs))]):
        cols: dict[str, Any] = {
            "id": [d["id"] for d in docs[lo:hi]],
            "url": [d["url"] for d in docs[lo:hi]],
            "n_tokens": pa.array([len(t) for t in tokens[lo:hi]], pa.int32()),
            "tokens": pa.array(tokens[lo:hi], pa.list_(pa.uint16())),
        }
        if text:
            cols["text"] = [d["text"] for d in docs[lo:hi]]
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(cols), folder / f"train-{i:05d}-of-00002.parquet")
    (folder / "manifest.json").write_text("{}")
    return folder


# --- normalization ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "norm"),
    [
        ("Don't stop!", "don t stop"),
        ("  Hello,\tWORLD -- 42nd  ", "hello world 42nd"),
        ("snake_case_name", "snake case name"),
        ("e-mail: a.b@c.org", "e mail a b c org"),
        ("Café DÉJÀ-vu, naïve", "café déjà vu naïve"),
        ("nai\u0308ve", "nai ve"),  # a combining mark is not alphanumeric: it splits
        ("İstanbul", "i stanbul"),  # lower() first: "i" + combining dot
        ("Straße ΑΒΓ δ", "straße αβγ δ"),
        ("x² ½ Ⅻ ٣", "x² ½ ⅻ ٣"),  # digits, numerics
        ("日本語のテキスト、です。", "日本語のテキスト です"),
        ("emoji 🙂 here 𝐀𝐁", "emoji here 𝐀𝐁"),  # astral letters are alphanumeric
        ("<unk> N points", "unk n points"),
        ("...", ""),
        ("", ""),
    ],
)
def test_gpt2_normalization(raw: str, norm: str) -> None:
    assert normalize(raw) == norm
    assert normalize(raw) == " ".join(ref_words(raw))


def test_word_pattern_is_isalnum_on_all_of_unicode() -> None:
    pattern = re.compile(r"[^\W_]")
    bad = [
        c
        for c in range(sys.maxunicode + 1)
        if not 0xD800 <= c < 0xE000 and bool(pattern.match(chr(c))) != chr(c).isalnum()
    ]
    assert bad == []


def test_lines_never_join() -> None:
    text = "One two\r\nthree\x0bfour\x0cfive\u2028six\u2029seven\x85eight\x1cnine\rten\n\n  !!\n"
    assert normalized_lines(text) == [
        "one two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
    ]


def test_random_strings_match_the_reference() -> None:
    rng = random.Random(7)
    alphabet = (
        "aZ9 _-'.,\t\u00e9\u0301\u0130\u00df\u03a3\u4e00\U0001d400\U0001f642\u00bd\u2019\u2014"
    )
    breaks = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
    # non-ASCII, none of it alphanumeric (the byte path): quotes, dashes, nbsp, emoji, a lone
    # surrogate
    punct = "aZ9 _-'.\u2019\u2014\u201c\u00a0\U0001f642\ud800"
    for _ in range(3000):
        s = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        assert normalize(s) == " ".join(ref_words(s))
        s = "".join(rng.choice(punct) for _ in range(rng.randint(0, 30)))
        assert normalize(s) == " ".join(ref_words(s))
        s = "".join(rng.choice(alphabet + breaks) for _ in range(rng.randint(0, 40)))
        assert normalized_lines(s) == [
            " ".join(w) for line in s.splitlines() if (w := ref_words(line))
        ]


# --- the audit against brute force -------------------------------------------------------------

VOCAB = [
    "the",
    "The",
    "cat",
    "CAT!",
    "sat",
    "on",
    "mat,",
    "café",
    "Straße",
    "δέλτα",
    "don't",
    "x_y",
    "42",
    "—",
    "...",
]
BREAKS = [" ", " ", " ", " ", "  ", "\t", " - ", "\n", "\r\n", "\u2028", "\x0c"]


def _text(rng: random.Random, words: int, breaks: list[str]) -> str:
    out = []
    for _ in range(words):
        out.append(rng.choice(VOCAB[:8]) if rng.random() < 0.8 else rng.choice(VOCAB))
        out.append(rng.choice(breaks))
    return "".join(out).strip()


def _random_case(seed: int, tmp: Path) -> tuple[list[dict[str, Any]], dict[str, Path], dict]:
    rng = random.Random(seed)
    docs = []
    for i in range(rng.randint(30, 60)):
        docs.append(
            {
                "id": f"doc-{rng.randint(0, 10**6):07d}-{i}",
                "url": f"http://s{i % 5}.test/{i}",
                "text": _text(rng, rng.randint(0, 60), BREAKS),
            }
        )
    one_line = [b for b in BREAKS if b not in ("\n", "\r\n")]  # txt examples: one line each
    txt_examples = [_text(rng, rng.randint(0, 24), one_line) for _ in range(40)]
    txt_examples += txt_examples[:5]  # duplicate lines
    json_examples = [_text(rng, rng.randint(0, 30), BREAKS) for _ in range(25)] + ["", "  "]
    # Examples copied into documents: verbatim, re-cased, a line split in two (n-grams across
    # the split are not there), lines joined into one (n-grams across the join are not the
    # example's), so long n-grams are found too.
    for i in range(12):
        ex = rng.choice(txt_examples + json_examples)
        how = i % 4
        if how == 1:
            ex = ex.upper()
        elif how == 2 and " " in ex:
            cut = rng.choice([k for k, c in enumerate(ex) if c == " "])
            ex = ex[:cut] + "\n" + ex[cut + 1 :]
        elif how == 3:
            ex = " ".join(ex.splitlines())
        filler = _text(rng, 5, BREAKS)
        docs.append({"id": f"copy-{i:02d}", "url": None, "text": f"{filler}\n{ex}"})
    sets = {"a": tmp / "a.txt", "b": tmp / "b.jsonl"}
    numbered = {
        "a": write_txt_set(sets["a"], txt_examples, rng),
        "b": write_jsonl_set(sets["b"], json_examples),
    }
    return docs, sets, numbered


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("n", [2, 3, 8])
def test_audit_equals_brute_force(
    seed: int, n: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small batches of rows and characters: heaps and found flags must merge across batches.
    monkeypatch.setattr(corpus_mod, "BATCH_ROWS", 7)
    monkeypatch.setattr(driver_mod, "BATCH_CHARS", 60)
    docs, sets, numbered = _random_case(seed, tmp_path)
    write_parquet(tmp_path / "corpus" / "docs.parquet", docs)
    result = audit(tmp_path / "corpus", sets, ngram=n, top=3)
    expected = brute(docs, numbered, n, 3)
    assert figures(result) == expected
    assert result["ngram"] == n
    assert result["corpus"]["documents"] == len(docs)
    assert result["corpus"]["words"] == sum(len(ref_words(d["text"])) for d in docs)
    assert result["corpus"]["unit"] == "words"
    if n == 3:  # the small vocabulary makes overlaps certain at n = 3
        assert all(e["ngrams_found"] > 0 for e in expected.values())


def test_ngrams_never_cross_a_line(tmp_path: Path) -> None:
    """Joined, the corpus's two lines hold every 4-gram of the example; line by line, none."""
    ev = tmp_path / "ev.jsonl"
    ev.write_text(
        json.dumps({"text": "alpha beta gamma delta epsilon"})
        + "\n"
        # the same words split over two lines in the example itself
        + json.dumps({"text": "alpha beta\ngamma delta epsilon zeta"})
        + "\n"
    )
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(
        json.dumps({"text": "alpha beta gamma\ndelta epsilon zeta"})
        + "\n"
        + json.dumps({"text": "x alpha beta gamma\u2028delta epsilon"})
        + "\n"
    )
    e = audit(corpus, {"ev": ev}, ngram=4)["eval_sets"]["ev"]
    # distinct 4-grams: "alpha beta gamma delta", "beta gamma delta epsilon" (example 1) and
    # "gamma delta epsilon zeta" (example 2); only the last one is inside a corpus line.
    assert (e["ngrams"], e["ngrams_found"], e["examples"]) == (3, 0, 2)
    corpus.write_text(json.dumps({"id": "d", "text": "Gamma, delta; EPSILON zeta!"}) + "\n")
    e = audit(corpus, {"ev": ev}, ngram=4)["eval_sets"]["ev"]
    assert (e["ngrams_found"], e["examples_with_overlap"], e["overlapping_lines"]) == (1, 1, [2])
    assert e["top_documents"] == [{"id": "d", "url": None, "ngrams": 1}]


def test_ties_are_broken_by_id_and_the_top_is_bounded(tmp_path: Path) -> None:
    ev = tmp_path / "ev.txt"
    ev.write_text("one two three four\nfive six seven eight\n")
    docs = [
        {"id": "d3", "text": "one two three four"},
        {"id": "d1", "text": "five six seven eight"},
        {"id": "d2", "text": "one two three four\nfive six seven eight"},
        {"id": "d0", "text": "nothing here at all"},
        {"id": "d4", "text": "five six seven eight"},
    ]
    write_parquet(tmp_path / "c.parquet", docs)
    result = audit(tmp_path / "c.parquet", {"ev": ev}, ngram=4, top=3)
    tops = result["eval_sets"]["ev"]["top_documents"]
    assert tops == [
        {"id": "d2", "url": None, "ngrams": 2},
        {"id": "d1", "url": None, "ngrams": 1},
        {"id": "d3", "url": None, "ngrams": 1},
    ]
    none = audit(tmp_path / "c.parquet", {"ev": ev}, ngram=4, top=0)
    assert none["eval_sets"]["ev"]["top_documents"] == []


# --- every corpus form, the same figures -------------------------------------------------------


def test_every_corpus_form_gives_the_same_figures(tmp_path: Path) -> None:
    docs, sets, numbered = _random_case(11, tmp_path)
    expected = brute(docs, numbered, 3, 5)
    enc = get_encoding()
    n_tokens = sum(len(enc.encode_ordinary(d["text"])) for d in docs)

    build = audit(write_build(tmp_path / "build", docs), sets, ngram=3, top=5)
    assert build["corpus"]["form"] == "build" and build["corpus"]["files"] == 2
    shards_text = audit(write_shards(tmp_path / "s1", docs, text=True), sets, ngram=3, top=5)
    shards_tokens = audit(write_shards(tmp_path / "s2", docs, text=False), sets, ngram=3, top=5)
    # a build folder whose dedup parts are gone falls back to its shards
    (tmp_path / "b2" / "dedup").mkdir(parents=True)
    write_shards(tmp_path / "b2" / "shards", docs, text=False)
    build_shards = audit(tmp_path / "b2", sets, ngram=3, top=5)
    for r in (build, shards_text, shards_tokens, build_shards):
        assert figures(r) == expected
        assert r["corpus"]["documents"] == len(docs)
        assert r["corpus"]["tokens"] == r["corpus"]["tokens_or_words"] == n_tokens
        assert r["corpus"]["unit"] == "tokens"
    assert shards_text["corpus"]["form"] == shards_tokens["corpus"]["form"] == "shards"

    # Plain files without id/url: ids fall back to FILE:ROW; the same counts.
    half = len(docs) // 2
    jsonl = tmp_path / "f" / "a.jsonl"
    jsonl.parent.mkdir()
    jsonl.write_text("".join(json.dumps({"text": d["text"]}) + "\n" for d in docs[:half]))
    write_parquet(tmp_path / "f" / "b.parquet", [{"text": d["text"]} for d in docs[half:]])
    files = audit([jsonl, tmp_path / "f" / "b.parquet"], sets, ngram=3, top=5)
    folder = audit(tmp_path / "f", sets, ngram=3, top=5)
    assert figures(files, with_ids=False) == figures(build, with_ids=False)
    assert folder == files
    assert files["corpus"]["unit"] == "words" and files["corpus"]["form"] == "files"
    # FILE:ROW names the document: same count as the document with its own id.
    count_by_id = {t["id"]: t["ngrams"] for t in build["eval_sets"]["a"]["top_documents"]}
    for t in files["eval_sets"]["a"]["top_documents"]:
        name, row = t["id"].split(":")
        assert name in ("a.jsonl", "b.parquet")
        doc = docs[int(row) + (half if name == "b.parquet" else 0)]
        assert count_by_id.get(doc["id"], t["ngrams"]) == t["ngrams"]


def test_bad_inputs_are_config_errors(tmp_path: Path) -> None:
    from pipeline.core.errors import ConfigError

    ev = tmp_path / "ev.txt"
    ev.write_text("a b c d e f g h i\n")
    (tmp_path / "c.jsonl").write_text('{"text": "a"}\n{"body": "b"}\n')
    with pytest.raises(ConfigError, match=r"c\.jsonl:2"):
        audit(tmp_path / "c.jsonl", {"ev": ev})
    with pytest.raises(ConfigError, match="file not found"):
        audit(tmp_path / "c.jsonl", {"ev": tmp_path / "missing.txt"})
    (tmp_path / "bad.jsonl").write_text('{"text": "a"}\nnot json\n')
    with pytest.raises(ConfigError, match=r"bad\.jsonl:2"):
        audit(tmp_path / "c.jsonl", {"ev": tmp_path / "bad.jsonl"})
    write_parquet(tmp_path / "notext.parquet", [{"id": "x", "body": "y"}])
    with pytest.raises(ConfigError, match="neither a text nor a tokens column"):
        audit(tmp_path / "notext.parquet", {"ev": ev})
    with pytest.raises(ConfigError, match="no evaluation sets"):
        audit(tmp_path / "c.jsonl", {})


# --- the real evaluation sets -----------------------------------------------------------------

LAMBADA_PICK = [3, 250, 1999, 4000]
PTB_PICK = [10, 700, 2500]


def _filler(rng: random.Random, words: int) -> str:
    """Text that shares no 8-gram with any real evaluation set: invented words."""
    return " ".join(f"zq{rng.randint(0, 10**6)}" for _ in range(words)) + "."


def test_real_eval_sets_lambada_and_ptb(shared_data: Path, tmp_path: Path) -> None:
    ev = shared_data / "evalsets"
    lambada = [json.loads(line)["text"] for line in (ev / "lambada_test.jsonl").open()]
    ptb = (ev / "ptb.test.txt").read_text().split("\n")[:-1]
    rng = random.Random(3)
    docs = []
    for i, k in enumerate(LAMBADA_PICK):
        text = lambada[k]
        if i == 1:  # half of the passage only, re-cased: the figures count what is there
            text = text[: len(text) // 2].upper()
        docs.append({"id": f"l{i}", "url": f"http://l.test/{i}", "text": text})
    for i, k in enumerate(PTB_PICK):
        line = ptb[k]
        if i == 2:  # punctuation and case do not matter after normalization
            line = line.replace(" ", ", ").title()
        docs.append({"id": f"p{i}", "url": f"http://p.test/{i}", "text": line})
    for d in docs:
        d["text"] = f"{_filler(rng, 40)}\n{d['text']}\n{_filler(rng, 40)}"
    docs += [{"id": f"f{i}", "url": None, "text": _filler(rng, 300)} for i in range(20)]
    write_build(tmp_path / "build", docs)
    sets = {"lambada": ev / "lambada_test.jsonl", "ptb": ev / "ptb.test.txt"}
    result = audit(tmp_path / "build", sets)
    numbered = {
        "lambada": [(i + 1, t) for i, t in enumerate(lambada)],
        "ptb": [(i + 1, t) for i, t in enumerate(ptb) if t.strip()],
    }
    expected = brute(docs, numbered, 8, 10)
    assert figures(result) == expected
    la, pt = result["eval_sets"]["lambada"], result["eval_sets"]["ptb"]
    # Exactly the embedded examples: the picks share no 8-gram with any other example.
    assert la["examples"] == 5153 and la["examples_with_overlap"] == len(LAMBADA_PICK)
    assert la["overlapping_lines"] == [k + 1 for k in LAMBADA_PICK]
    assert pt["examples"] == 3761 and pt["examples_with_overlap"] == len(PTB_PICK)
    assert pt["overlapping_lines"] == [k + 1 for k in PTB_PICK]
    assert [t["id"] for t in pt["top_documents"]] == sorted(
        ["p0", "p1", "p2"], key=lambda i: -len(ref_grams(ptb[PTB_PICK[int(i[1])]], 8))
    )
    assert {t["id"] for t in la["top_documents"]} == {"l0", "l1", "l2", "l3"}
    whole = [len(ref_grams(lambada[k], 8)) for k in LAMBADA_PICK]
    assert whole[1] > la["top_documents"][-1]["ngrams"] > 0  # l1 holds half of its passage


# --- driver, report, CLI ----------------------------------------------------------------------


def _small_build(tmp_path: Path) -> tuple[Path, Path]:
    ev = tmp_path / "ev.txt"
    ev.write_text("The cat sat on the mat today.\nA dog ran far away from home.\n")
    docs = [
        {"id": "a", "url": "http://a.test/", "text": "Yesterday:\nthe cat sat on the mat today!"},
        {"id": "b", "url": "http://b.test/", "text": "Nothing to see here, move along now."},
    ]
    return write_build(tmp_path / "build", docs), ev


def test_run_writes_overlap_json_for_the_report(tmp_path: Path) -> None:
    from pipeline.report import summarize

    root, ev = _small_build(tmp_path)
    (root / "overlap.json").write_text('{"stale": true}')
    cfg = parse_config({"overlap": {"eval_sets": {"small": str(ev)}, "ngram": 4}})
    result = run(root, cfg)
    raw = (root / "overlap.json").read_bytes()
    assert json.loads(raw) == result
    e = result["eval_sets"]["small"]
    # "the cat sat on the mat today": 4 distinct 4-grams, all found; "a dog ...": 4, none.
    assert (e["ngrams"], e["ngrams_found"], e["percent"]) == (8, 4, 50.0)
    assert (e["examples"], e["examples_with_overlap"], e["overlapping_lines"]) == (2, 1, [1])
    assert e["top_documents"] == [{"id": "a", "url": "http://a.test/", "ngrams": 4}]
    assert result["corpus"]["form"] == "build" and result["corpus"]["documents"] == 2
    run(root, cfg)
    assert (root / "overlap.json").read_bytes() == raw  # same build, same bytes
    assert summarize(root)["eval_overlap"] == result
    assert str(tmp_path) not in raw.decode()  # no absolute paths
    assert markdown(result).splitlines()[:3] == [
        "| set | 4-grams | found | percent | examples | with overlap |",
        "|---|---:|---:|---:|---:|---:|",
        "| small | 8 | 4 | 50.00 | 2 | 1 |",
    ]


def test_cli_prints_the_table_and_writes_json(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pipeline.cli import app

    root, ev = _small_build(tmp_path)
    runner = CliRunner()
    out = tmp_path / "o.json"
    res = runner.invoke(
        app, ["overlap", str(root), "--eval", f"small={ev}", "--json", str(out), "--ngram", "4"]
    )
    assert res.exit_code == 0, res.output
    assert "| set | 4-grams | found | percent | examples | with overlap |" in res.stdout
    assert "| small | 8 | 4 | 50.00 | 2 | 1 |" in res.stdout
    assert "- a http://a.test/ (4 4-grams)" in res.stdout
    assert json.loads(out.read_text()) == audit(root, {"small": ev}, ngram=4)
    assert not (root / "overlap.json").exists()  # --json given: the build folder is left alone

    # A build folder without --json: BUILD/overlap.json, which the report reads.
    res = runner.invoke(app, ["overlap", str(root), "--eval", f"small={ev}"])
    assert res.exit_code == 0, res.output
    assert "| small | 0 | 0 | 0.00 | 2 | 0 |" in res.stdout  # 7-word lines: no 8-grams
    assert json.loads((root / "overlap.json").read_text())["ngram"] == 8

    # Files: no JSON unless asked.
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(json.dumps({"text": "the cat sat on the mat today"}) + "\n")
    res = runner.invoke(app, ["overlap", str(corpus), "--eval", f"s={ev}", "--ngram", "4"])
    assert res.exit_code == 0 and "| s | 8 | 4 | 50.00 | 2 | 1 |" in res.stdout
    assert not (tmp_path / "overlap.json").exists()

    for bad in (["--eval", "nofile"], ["--eval", f"x={tmp_path / 'missing.txt'}"], []):
        res = runner.invoke(app, ["overlap", str(root), *bad])
        assert res.exit_code == 2, (bad, res.output)


# --- the demo build -----------------------------------------------------------------------------


@pytest.mark.slow
def test_demo_audit_names_exactly_the_planted_examples(demo_build) -> None:
    out, result, web = demo_build
    assert result["failures"] == []
    audit_json = json.loads((out / "overlap.json").read_text())
    e = audit_json["eval_sets"]["demo"]
    exp = web.expected_overlap
    planted = sorted(n for lines in web.eval_planted.values() for n in lines)
    assert e["examples_with_overlap"] == exp["examples_with_overlap"] == len(planted) == 5
    assert e["overlapping_lines"] == planted
    assert {k: e[k] for k in exp} == exp
    # The top documents are the pages planted into, each with its planted lines' 8-grams.
    per_page = {
        url: len(set().union(*(ref_grams(web.eval_lines[n - 1], 8) for n in lines)))
        for url, lines in web.eval_planted.items()
    }
    assert {t["url"]: t["ngrams"] for t in e["top_documents"]} == per_page
    assert audit_json["corpus"]["documents"] == result["funnel"]["shards"]["out"]
    # The shards (with their text column) give the same figures as the dedup parts.
    shards = audit(out / "shards", {"demo": web.eval_path})
    assert figures(shards) == figures(audit_json)
    assert shards["corpus"]["tokens"] == audit_json["corpus"]["tokens"]


def test_the_audit_config_does_not_reshard() -> None:
    """overlap.* shapes no shard: changing the eval sets must not rebuild (or re-key) them."""
    from pipeline.shards.writer import config_fingerprint

    plain = parse_config({})
    audited = parse_config({"overlap": {"eval_sets": {"ptb": "/x/ptb.txt"}, "top_documents": 3}})
    assert config_fingerprint(plain) == config_fingerprint(audited)
