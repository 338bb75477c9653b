"""The report page: one self-contained HTML file from a summary (pipeline.report.summary).

Charts are Plotly figures (hover, zoom, PNG export for a person reading the report) with
plotly.js inlined once in the page, so the file opens offline, from disk, without a server.
Tables are plain HTML; every value from the build is escaped (html.escape here, Plotly's JSON
escapes `<`, `>` and `/`). Every chart sits in a container `<div class="chart" id="chart-...">`;
a chart without data is a `chart chart-empty` container holding a "no data" note instead.
The funnel table's number cells carry `data-stage`, `data-field` (and `data-reason`) and
`data-value` attributes so a test can read the figures back exactly.

Deterministic: fixed div ids, no timestamps, no random ids, so the same summary renders to
the same bytes.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import plotly.offline

from pipeline.core.ledger import STAGES

TOP_LANGS = 25
PLOT_CONFIG = {"displaylogo": False, "responsive": True}
NA = "n/a"

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2733;
       margin: 0; background: #f6f7f9; }
header { background: #1d2733; color: #fff; padding: 18px 28px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 2px 0; color: #c9d2dc; }
header code { color: #fff; }
nav { padding: 8px 28px; background: #e8ecf1; font-size: 13px; }
nav a { margin-right: 14px; color: #24527a; text-decoration: none; }
main { padding: 8px 28px 40px; max-width: 1400px; }
section { background: #fff; border: 1px solid #dde2e8; border-radius: 6px; margin: 18px 0;
          padding: 6px 18px 14px; }
h2 { font-size: 18px; margin: 12px 0 6px; }
h3 { font-size: 15px; margin: 14px 0 6px; }
p.note { color: #55606c; margin: 4px 0 8px; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 12px; }
.chart { min-height: 80px; }
.chart-empty { border: 1px dashed #c5ccd4; border-radius: 4px; display: flex;
               align-items: center; justify-content: center; color: #6b7682; }
table { border-collapse: collapse; margin: 6px 0 10px; font-size: 13px; }
th, td { border-bottom: 1px solid #e3e7ec; padding: 3px 10px; text-align: left;
         vertical-align: top; }
th { background: #f0f3f6; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.key { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px;
         word-break: break-all; max-width: 720px; }
ul.samples { margin: 0; padding-left: 16px; }
.warn { color: #8a4b00; }
"""


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return NA
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else NA


def num_td(value: Any, digits: int = 2, **data: Any) -> str:
    attrs = "".join(f' data-{k.replace("_", "-")}="{esc(v)}"' for k, v in data.items())
    if value is not None and data:
        attrs += f' data-value="{esc(value)}"'
    return f'<td class="num"{attrs}>{esc(fmt(value, digits))}</td>'


def table(headers: Sequence[str], rows: Iterable[str], numeric: Sequence[int] = ()) -> str:
    head = "".join(
        f'<th class="num">{esc(h)}</th>' if i in numeric else f"<th>{esc(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = "".join(rows)
    if not body:
        body = f'<tr><td colspan="{len(headers)}" class="note">no data</td></tr>'
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def kv_table(pairs: Iterable[tuple[str, Any]]) -> str:
    rows = []
    for key, value in pairs:
        cell = (
            num_td(value)
            if isinstance(value, int | float) and not isinstance(value, bool)
            else f"<td>{esc(fmt(value))}</td>"
        )
        rows.append(f"<tr><th>{esc(key)}</th>{cell}</tr>")
    return "<table><tbody>" + "".join(rows) + "</tbody></table>"


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


class Charts:
    """Renders figures into `chart` containers; the first one that has data needs plotly.js."""

    def __init__(self) -> None:
        self.rendered = 0

    def __call__(self, name: str, fig: go.Figure | None, empty: str, height: int = 380) -> str:
        cid = f"chart-{name}"
        if fig is None:
            return (
                f'<div class="chart chart-empty" id="{cid}" data-empty="true" '
                f'style="height:{min(height, 160)}px"><p class="no-data">{esc(empty)}</p></div>'
            )
        self.rendered += 1
        fig.update_layout(
            template="plotly_white",
            height=height,
            margin={"l": 60, "r": 20, "t": 44, "b": 60},
            font={"size": 12},
        )
        div = fig.to_html(
            full_html=False,
            include_plotlyjs=False,
            div_id=f"plot-{name}",
            default_height=f"{height}px",
            config=PLOT_CONFIG,
        )
        return f'<div class="chart" id="{cid}">{div}</div>'


def _trim(labels: list[str], counts: list[int]) -> tuple[list[str], list[int]]:
    """The bins from the first to the last non-empty one."""
    nz = [i for i, c in enumerate(counts) if c]
    if not nz:
        return [], []
    return labels[nz[0] : nz[-1] + 1], counts[nz[0] : nz[-1] + 1]


def _hist_fig(hist: dict[str, Any] | None, title: str, xtitle: str) -> go.Figure | None:
    if not hist:
        return None
    labels, counts = _trim(list(hist["labels"]), list(hist["counts"]))
    if not labels:
        return None
    fig = go.Figure(go.Bar(x=labels, y=counts, name="documents"))
    fig.update_layout(title=title, xaxis_title=xtitle, yaxis_title="documents", bargap=0.05)
    fig.update_xaxes(type="category")
    return fig


def _hbar(labels: list[str], values: list[int | float], title: str, xtitle: str) -> go.Figure:
    # Largest on top: Plotly draws the first category at the bottom.
    fig = go.Figure(go.Bar(x=values[::-1], y=labels[::-1], orientation="h"))
    fig.update_layout(title=title, xaxis_title=xtitle)
    fig.update_yaxes(type="category", automargin=True)
    return fig


# --- sections -----------------------------------------------------------------------------


def _stage_order(names: Iterable[str]) -> list[str]:
    names = list(names)
    return [s for s in STAGES if s in names] + sorted(n for n in names if n not in STAGES)


def _overview(s: dict[str, Any]) -> str:
    m = s.get("manifest")
    if not m:
        return note("No shards/manifest.json: the shards stage has not run.")
    tok = m.get("tokenizer") or {}
    totals = m.get("totals") or {}
    split = m.get("split") or {}
    parts = [
        kv_table(
            [
                ("corpus name", m.get("name")),
                ("config fingerprint", m.get("config_fingerprint")),
                ("code version", m.get("code_version")),
                ("manifest schema version", m.get("schema_version")),
                ("tokenizer", tok.get("name")),
                ("vocab size", tok.get("vocab_size")),
                ("EOT id", tok.get("eot_id")),
                ("token dtype", tok.get("token_dtype")),
                ("shards", m.get("n_shards")),
                ("split", split.get("method")),
                ("val fraction", split.get("val_fraction")),
                ("shuffle seed", split.get("shuffle_seed")),
            ]
        ),
        "<h3>Totals</h3>",
        table(
            ["figure", "value"],
            (
                f"<tr><td>{esc(k)}</td>{num_td(v, manifest=k)}</tr>"
                for k, v in sorted(totals.items())
            ),
            numeric=(1,),
        ),
        "<h3>Shards by split</h3>",
        table(
            ["split", "shards", "rows", "tokens", "bytes"],
            (
                f"<tr><td>{esc(split_name)}</td>{num_td(v['shards'])}{num_td(v['rows'])}"
                f"{num_td(v['tokens'])}{num_td(v['bytes'])}</tr>"
                for split_name, v in (m.get("by_split") or {}).items()
            ),
            numeric=(1, 2, 3, 4),
        ),
    ]
    return "".join(parts)


def _funnel(s: dict[str, Any], chart: Charts) -> str:
    funnel = s.get("funnel")
    if not isinstance(funnel, dict):
        return note("No funnel.json: the build has not finished a stage.") + chart(
            "funnel", None, "no data: funnel.json not found"
        )
    stages = _stage_order(funnel)
    rows = []
    for st in stages:
        f = funnel[st]
        dropped = f.get("dropped") or {}
        total = sum(dropped.values())
        reasons = "".join(
            f'<li>{esc(r)}: <span class="num" data-stage="{esc(st)}" data-field="dropped" '
            f'data-reason="{esc(r)}" data-value="{esc(n)}">{esc(fmt(n))}</span></li>'
            for r, n in sorted(dropped.items())
        )
        sources = "".join(
            f'<li>{esc(src)}: <span class="num" data-stage="{esc(st)}" data-field="by_source" '
            f'data-source="{esc(src)}" data-value="{esc(n)}">{esc(fmt(n))}</span></li>'
            for src, n in sorted((f.get("by_source") or {}).items())
        )
        rows.append(
            f'<tr data-stage="{esc(st)}"><td>{esc(st)}</td>'
            f"{num_td(f.get('in'), stage=st, field='in')}"
            f"{num_td(f.get('out'), stage=st, field='out')}"
            f"{num_td(total, stage=st, field='dropped_total')}"
            f'<td class="num">{esc(pct(f.get("out") or 0, f.get("in") or 0))}</td>'
            f'<td><ul class="samples">{reasons}</ul></td>'
            f'<td><ul class="samples">{sources}</ul></td></tr>'
        )
    has_data = any((funnel[st].get("in") or 0) for st in stages)
    fig = None
    if has_data:
        fig = go.Figure(
            [
                go.Bar(name="in", x=stages, y=[funnel[st].get("in", 0) for st in stages]),
                go.Bar(name="out", x=stages, y=[funnel[st].get("out", 0) for st in stages]),
                go.Bar(
                    name="dropped",
                    x=stages,
                    y=[sum((funnel[st].get("dropped") or {}).values()) for st in stages],
                ),
            ]
        )
        fig.update_layout(title="Items in, out and dropped per stage", barmode="group")
    return (
        chart("funnel", fig, "no data: every stage has 0 items")
        + table(
            ["stage", "in", "out", "dropped", "kept", "dropped by reason", "out by source"],
            rows,
            numeric=(1, 2, 3, 4),
        )
        + note(
            "From funnel.json; in = out + dropped for every stage. Source: live pages, or "
            "captures of dead links from the Wayback Machine or Common Crawl."
        )
    )


def _drops(s: dict[str, Any], chart: Charts) -> str:
    drops = s.get("drops") or {}
    labels: list[str] = []
    traces = []
    rows = []
    funnel = s.get("funnel") if isinstance(s.get("funnel"), dict) else {}
    for st in _stage_order(drops):
        reasons = drops[st]
        if not reasons:
            continue
        names = sorted(reasons, key=lambda r: (-reasons[r]["count"], r))
        traces.append(
            go.Bar(
                name=st,
                y=[f"{st}: {r}" for r in names][::-1],
                x=[reasons[r]["count"] for r in names][::-1],
                orientation="h",
            )
        )
        labels.extend(names)
        in_funnel = ((funnel or {}).get(st) or {}).get("dropped") or {}
        for r in names:
            samples = "".join(
                f"<li>{esc(x['key'])}" + (f" — {esc(x['detail'])}" if x["detail"] else "") + "</li>"
                for x in reasons[r]["samples"]
            )
            rows.append(
                f"<tr><td>{esc(st)}</td><td>{esc(r)}</td>{num_td(reasons[r]['count'])}"
                f"{num_td(in_funnel.get(r))}"
                f'<td class="key"><ul class="samples">{samples}</ul></td></tr>'
            )
    fig = None
    if traces:
        fig = go.Figure(traces[::-1])
        fig.update_layout(title="Drops by stage and reason", xaxis_title="items dropped")
        fig.update_yaxes(type="category", automargin=True)
    height = max(260, 120 + 24 * len(labels))
    return (
        chart("drops", fig, "no data: no ledger rows", height=height)
        + table(
            ["stage", "reason", "ledger rows", "funnel.json", "samples (5 smallest keys — detail)"],
            rows,
            numeric=(2, 3),
        )
        + note("From ledger/<stage>/*.parquet (key, reason, detail).")
    )


def _crawl(s: dict[str, Any], chart: Charts) -> str:
    c = s.get("crawl") or {}
    status = c.get("by_status") or []
    errors = c.get("by_error") or []
    fig_s = fig_e = None
    if status:
        fig_s = go.Figure(go.Bar(x=[r["status"] for r in status], y=[r["count"] for r in status]))
        fig_s.update_layout(title="HTTP status", xaxis_title="status", yaxis_title="fetches")
        fig_s.update_xaxes(type="category")
    if errors:
        fig_e = go.Figure(go.Bar(x=[r["error"] for r in errors], y=[r["count"] for r in errors]))
        fig_e.update_layout(title="Outcome (error)", xaxis_title="error", yaxis_title="fetches")
        fig_e.update_xaxes(type="category")
    fetches = c.get("fetches") or 0
    return (
        note(f"{fmt(fetches)} fetch rows in crawl/fetches/ (one per crawled link).")
        + '<div class="grid">'
        + chart("crawl-status", fig_s, "no data: no crawl/fetches parts", height=340)
        + chart("crawl-errors", fig_e, "no data: no crawl/fetches parts", height=340)
        + '</div><div class="grid"><div>'
        + table(
            ["status", "fetches", "share"],
            (
                f"<tr><td>{esc(r['status'])}</td>{num_td(r['count'], crawl_status=r['status'])}"
                f'<td class="num">{pct(r["count"], fetches)}</td></tr>'
                for r in status
            ),
            numeric=(1, 2),
        )
        + "</div><div>"
        + table(
            ["error", "fetches", "share"],
            (
                f"<tr><td>{esc(r['error'])}</td>{num_td(r['count'], crawl_error=r['error'])}"
                f'<td class="num">{pct(r["count"], fetches)}</td></tr>'
                for r in errors
            ),
            numeric=(1, 2),
        )
        + "</div></div>"
    )


def _language(s: dict[str, Any], chart: Charts) -> str:
    lang = s.get("language") or {}
    labels = lang.get("labels") or []
    fig = None
    if labels:
        top = labels[:TOP_LANGS]
        xs = [r["lang"] for r in top]
        ys = [r["docs"] for r in top]
        rest = sum(r["docs"] for r in labels[TOP_LANGS:])
        if rest:
            xs.append("(other)")
            ys.append(rest)
        fig = go.Figure(go.Bar(x=xs, y=ys))
        fig.update_layout(title="Language labels", xaxis_title="label", yaxis_title="documents")
        fig.update_xaxes(type="category")
    score = lang.get("lang_score")
    fig_s = _hist_fig(score, "Language score (fastText lid.176)", "lang_score")
    docs = lang.get("docs") or 0
    return (
        note(
            f"All {fmt(docs)} extracted documents (docs/), before filtering: the filter's "
            "wrong_language drops are still in."
        )
        + '<div class="grid">'
        + chart("lang-labels", fig, "no data: no docs parts")
        + chart("lang-score", fig_s, "no data: no lang_score values")
        + "</div>"
        + table(
            ["label", "documents", "share"],
            (
                f"<tr><td>{esc(r['lang'])}</td>{num_td(r['docs'], lang=r['lang'])}"
                f'<td class="num">{pct(r["docs"], docs)}</td></tr>'
                for r in labels[:TOP_LANGS]
            ),
            numeric=(1, 2),
        )
    )


def _stats_table(d: dict[str, Any], unit: str) -> str:
    return kv_table(
        [
            ("documents", d.get("count")),
            (f"mean {unit}", d.get("mean")),
            (f"median {unit}", d.get("median")),
            (f"p90 {unit}", d.get("p90")),
            (f"min {unit}", d.get("min")),
            (f"max {unit}", d.get("max")),
            (f"total {unit}", d.get("sum")),
        ]
    )


def _lengths(s: dict[str, Any], chart: Charts) -> str:
    d = s.get("lengths") or {}
    fig = _hist_fig(
        d.get("histogram"), "Document length", "tokens per document (log-spaced bins, EOT included)"
    )
    return (
        chart("lengths", fig, "no data: no documents in shards/")
        + _stats_table(d, "tokens")
        + note("From shards/*.parquet, column n_tokens (every document of the corpus).")
    )


def _domains(s: dict[str, Any], chart: Charts) -> str:
    d = s.get("domains") or {}
    by_docs = d.get("top_by_docs") or []
    by_tok = d.get("top_by_tokens") or []
    docs, tokens = d.get("docs") or 0, d.get("tokens") or 0
    fig_d = fig_t = None
    height = max(300, 110 + 18 * len(by_docs))
    if by_docs:
        fig_d = _hbar(
            [r["domain"] for r in by_docs],
            [r["docs"] for r in by_docs],
            f"Top {len(by_docs)} domains by documents",
            "documents",
        )
    if by_tok:
        fig_t = _hbar(
            [r["domain"] for r in by_tok],
            [r["tokens"] for r in by_tok],
            f"Top {len(by_tok)} domains by tokens",
            "tokens",
        )

    def rows(items: list[dict[str, Any]], order: str) -> Iterable[str]:
        for i, r in enumerate(items, 1):
            yield (
                f'<tr><td class="num">{i}</td><td>{esc(r["domain"])}</td>'
                f"{num_td(r['docs'], domain=r['domain'], by=order, field='docs')}"
                f'<td class="num">{pct(r["docs"], docs)}</td>'
                f"{num_td(r['tokens'], domain=r['domain'], by=order, field='tokens')}"
                f'<td class="num">{pct(r["tokens"], tokens)}</td></tr>'
            )

    headers = ["#", "domain", "documents", "share", "tokens", "share"]
    return (
        note(
            f"{fmt(d.get('distinct') or 0)} registered domains, {fmt(docs)} documents, "
            f"{fmt(tokens)} tokens in shards/."
        )
        + '<div class="grid">'
        + chart("domains-docs", fig_d, "no data: no documents in shards/", height=height)
        + chart("domains-tokens", fig_t, "no data: no documents in shards/", height=height)
        + '</div><div class="grid"><div><h3>By documents</h3>'
        + table(headers, rows(by_docs, "docs"), numeric=(0, 2, 3, 4, 5))
        + "</div><div><h3>By tokens</h3>"
        + table(headers, rows(by_tok, "tokens"), numeric=(0, 2, 3, 4, 5))
        + "</div></div>"
    )


def _karma(s: dict[str, Any], chart: Charts) -> str:
    d = s.get("karma") or {}
    fig = _hist_fig(d.get("histogram"), "Karma of the documents' links", "karma (log-spaced bins)")
    return (
        chart("karma", fig, "no data: no documents in shards/")
        + _stats_table(d, "karma")
        + note("From shards/*.parquet, column karma (by harvest.karma_mode).")
    )


def _duplicates(s: dict[str, Any], chart: Charts) -> str:
    d = s.get("duplicates") or {}
    sizes = d.get("sizes") or []
    fig = None
    if sizes:
        fig = go.Figure(go.Bar(x=[str(r["size"]) for r in sizes], y=[r["clusters"] for r in sizes]))
        fig.update_layout(
            title="Duplicate clusters by size",
            xaxis_title="documents in cluster (kept + dropped)",
            yaxis_title="clusters",
        )
        fig.update_xaxes(type="category")
    drops = d.get("drops") or {}
    largest = "".join(
        f'<tr><td class="key">{esc(r["kept_id"])}</td>{num_td(r["size"])}</tr>'
        for r in d.get("largest") or []
    )
    return (
        chart("dup-clusters", fig, "no data: no duplicates dropped")
        + '<div class="grid"><div>'
        + kv_table(
            [
                ("exact_duplicate drops", drops.get("exact_duplicate")),
                ("near_duplicate drops", drops.get("near_duplicate")),
                ("clusters (kept documents with drops)", d.get("clusters")),
                ("documents in clusters", d.get("docs_in_clusters")),
            ]
        )
        + "</div><div><h3>Largest clusters</h3>"
        + table(["kept id", "size"], [largest] if largest else [], numeric=(1,))
        + "</div></div>"
        + note(
            "From ledger/dedup (detail = the kept id): a cluster is a kept document and every "
            "document dropped in its favour, exact and near together."
        )
    )


def _wikipedia(s: dict[str, Any], chart: Charts) -> str:
    w = s.get("wikipedia") or {}
    dropped = w.get("dropped") or {}
    overlap = w.get("overlap") or {}
    stripped = w.get("stripped") or {}
    traces = []
    lines = []
    for folder in ("docs", "filtered"):
        h = overlap.get(folder)
        if h is None:
            lines.append((f"wiki_overlap in {folder}/", "not computed (no such column)"))
            continue
        lines.append((f"wiki_overlap in {folder}/: documents with a value", h["count"]))
        lines.append((f"wiki_overlap in {folder}/: mean", h["mean"]))
        if h["count"]:
            labels, counts = _trim(list(h["labels"]), list(h["counts"]))
            traces.append(go.Bar(name=f"{folder}/", x=labels, y=counts))
    fig = None
    if traces:
        fig = go.Figure(traces)
        fig.update_layout(
            title="Share of word n-grams found in Wikipedia",
            xaxis_title="wiki_overlap",
            yaxis_title="documents",
            barmode="group",
        )
        fig.update_xaxes(type="category")
    for folder in ("docs", "filtered"):
        st = stripped.get(folder)
        if st is None:
            lines.append((f"stripped from {folder}/", "not computed"))
        else:
            lines.append((f"{folder}/: documents with paragraphs stripped", st["docs_stripped"]))
            lines.append((f"{folder}/: characters stripped", st["stripped_chars"]))
            share = st["share_chars"]
            lines.append(
                (
                    f"{folder}/: stripped share of characters",
                    NA if share is None else f"{100 * share:.2f}%",
                )
            )
    return kv_table(
        [
            ("dropped as wikipedia (domain rule)", dropped.get("wikipedia", 0)),
            (
                "dropped as wikipedia_copy (too short once stripped)",
                dropped.get("wikipedia_copy", 0),
            ),
            *lines,
        ]
    ) + chart(
        "wiki-overlap",
        fig,
        "not computed: no wiki_overlap values (no wikipedia.sources or wikipedia.index set)",
        height=340,
    )


def _eval_overlap(s: dict[str, Any]) -> str:
    ev = s.get("eval_overlap")
    if not ev:
        return note("not computed: no overlap.json in the build folder (run `webtext overlap`).")
    rows = []
    for name, e in sorted((ev.get("eval_sets") or {}).items()):
        e = e if isinstance(e, dict) else {}
        tops = "".join(
            f"<li>{esc(t.get('id', ''))} {esc(t.get('url', ''))} ({esc(fmt(t.get('ngrams')))})</li>"
            for t in (e.get("top_documents") or [])
            if isinstance(t, dict)
        )
        rows.append(
            f"<tr><td>{esc(name)}</td>"
            f"{num_td(e.get('ngrams'), eval_set=name, field='ngrams')}"
            f"{num_td(e.get('ngrams_found'), eval_set=name, field='ngrams_found')}"
            f"{num_td(e.get('percent'), eval_set=name, field='percent')}"
            f"{num_td(e.get('examples'), eval_set=name, field='examples')}"
            f"{num_td(e.get('examples_with_overlap'), eval_set=name, field='examples_with_overlap')}"
            f'<td class="key"><ul class="samples">{tops}</ul></td></tr>'
        )
    return table(
        ["eval set", "n-grams", "found", "percent", "examples", "with overlap", "top documents"],
        rows,
        numeric=(1, 2, 3, 4, 5),
    ) + note("From overlap.json (8-gram audit of evaluation sets against the corpus).")


def _throughput(s: dict[str, Any], chart: Charts) -> str:
    steps = (s.get("throughput") or {}).get("steps") or []
    xs, ys, hover = [], [], []
    rows = []
    for e in steps:
        step = e.get("step")
        p = e.get("progress") or {}
        rate, source = p.get("items_per_s_wall"), "progress files (wall)"
        if rate is None:
            rate, source = e.get("items_per_s"), "done markers"
        if rate is not None:
            xs.append(step)
            ys.append(rate)
            hover.append(source)
        rows.append(
            f"<tr><td>{esc(step)}</td><td>{esc(e.get('stage'))}</td>{num_td(e.get('parts'))}"
            f"{num_td(e.get('in'))}{num_td(e.get('out'))}{num_td(e.get('seconds'))}"
            f"{num_td(e.get('cpu_seconds'))}{num_td(e.get('items_per_s'))}"
            f"{num_td(p.get('parts'))}{num_td(p.get('wall_seconds'))}"
            f"{num_td(p.get('items_per_s_wall'))}{num_td(p.get('items_per_s_part'))}</tr>"
        )
    fig = None
    if xs:
        fig = go.Figure(
            go.Bar(
                x=xs,
                y=ys,
                customdata=hover,
                hovertemplate="%{x}: %{y:,.1f} items/s<br>%{customdata}<extra></extra>",
            )
        )
        fig.update_layout(title="Items per second by step", yaxis_title="items/s (log scale)")
        fig.update_yaxes(type="log")  # steps differ by orders of magnitude (crawl vs filter)
        fig.update_xaxes(type="category")
    return (
        chart(
            "throughput", fig, "n/a: no timings in the done markers or progress files", height=340
        )
        + table(
            [
                "step",
                "stage",
                "parts",
                "in",
                "out",
                "seconds",
                "CPU s",
                "items/s",
                "progress parts",
                "wall s",
                "items/s (wall)",
                "items/s (per part)",
            ],
            rows,
            numeric=tuple(range(2, 12)),
        )
        + note(
            "Markers: seconds is the sum over parts of the stage's own timing (crawl: "
            "crawl_seconds); items/s = in / seconds. Progress files (_progress/<step>/): wall = "
            "last update - first start; per part = items / sum of part durations. n/a: not "
            "recorded."
        )
    )


SECTIONS = (
    ("overview", "Overview"),
    ("funnel", "Funnel"),
    ("drops", "Drop reasons"),
    ("crawl", "Crawl outcomes"),
    ("language", "Language"),
    ("lengths", "Document length"),
    ("domains", "Top domains"),
    ("karma", "Karma"),
    ("duplicates", "Duplicates"),
    ("wikipedia", "Wikipedia"),
    ("eval-overlap", "Evaluation overlap"),
    ("throughput", "Throughput"),
)


def render_html(summary: dict[str, Any], build_dir: Path | str) -> str:
    """The whole page for `summary` (from summarize(build_dir)); self-contained, offline."""
    s = summary
    chart = Charts()
    corpus = s.get("corpus") or {}
    name = corpus.get("name") or "(unnamed build)"
    bodies = {
        "overview": _overview(s),
        "funnel": _funnel(s, chart),
        "drops": _drops(s, chart),
        "crawl": _crawl(s, chart),
        "language": _language(s, chart),
        "lengths": _lengths(s, chart),
        "domains": _domains(s, chart),
        "karma": _karma(s, chart),
        "duplicates": _duplicates(s, chart),
        "wikipedia": _wikipedia(s, chart),
        "eval-overlap": _eval_overlap(s),
        "throughput": _throughput(s, chart),
    }
    sections = "".join(
        f'<section id="{sid}"><h2>{esc(title)}</h2>{bodies[sid]}</section>'
        for sid, title in SECTIONS
    )
    warnings = s.get("warnings") or []
    if warnings:
        sections += (
            '<section id="warnings"><h2>Warnings</h2><ul>'
            + "".join(f'<li class="warn">{esc(w)}</li>' for w in warnings)
            + "</ul></section>"
        )
    nav = "".join(f'<a href="#{sid}">{esc(title)}</a>' for sid, title in SECTIONS)
    # plotly.js once, inline, before the first figure; none at all when nothing is plotted.
    plotlyjs = (
        "<script>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>\n"
        f'<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script>\n'
        if chart.rendered
        else ""
    )
    fingerprint = corpus.get("config_fingerprint") or NA
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>webtext report: {esc(name)}</title>\n"
        f"<style>{CSS}</style>\n"
        f"{plotlyjs}"
        "</head>\n<body>\n"
        f"<header><h1>webtext report: {esc(name)}</h1>"
        f"<p>build folder <code>{esc(build_dir)}</code> · config fingerprint "
        f"<code>{esc(fingerprint)}</code> · summary version {esc(s.get('version'))}</p>"
        "<p>Every figure is read from the files of the build folder; report/summary.json holds "
        "them all.</p></header>\n"
        f"<nav>{nav}</nav>\n<main>{sections}</main>\n</body>\n</html>\n"
    )
