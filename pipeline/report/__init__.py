"""report stage: one offline HTML page and a JSON summary of a finished build.

Reads: funnel.json, ledger/<stage>/*.parquet (key, reason, detail), crawl/fetches/ (status,
error), docs/ (lang, lang_score, wiki_overlap), filtered/ (wiki_overlap, wiki_stripped_chars
when present), shards/*.parquet (domain, n_tokens, karma) with shards/manifest.json,
overlap.json (evaluation-set audit, when present), the done markers _done/<step>/*.json and
the progress files _progress/<step>/*.json (when present). Writes: report/summary.json and
report/index.html. Drops: nothing. Driver: `run` (the whole build at once).

Only the columns a figure needs are read, a record batch at a time; no text column is read.
Missing inputs are shown as "not computed" / "no data", never an error. The summary is
deterministic (sorted keys and files, smallest keys as samples), so a rerun over the same
build gives the same bytes for both files.

- summary.py: `summarize(root) -> dict`, every figure of the report
- render.py: `render_html(summary, build_dir) -> str`, Plotly charts + tables, plotly.js inline
- driver.py: `run(root, cfg=None) -> Path`, writes both files, returns the report folder
"""

from pipeline.report.driver import STAGE, VERSION, run
from pipeline.report.render import render_html
from pipeline.report.summary import summarize

__all__ = ["STAGE", "VERSION", "render_html", "run", "summarize"]
