"""`webtext` command line. Flows are imported only inside the commands that run one, so
`import pipeline` never loads Prefect."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import typer
import yaml
from rich.console import Console
from rich.table import Table

from pipeline.core.config import CorpusConfig, load_config
from pipeline.core.errors import ConfigError, PartError

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console(stderr=True)
ConfigOpt = typer.Option(None, "--config", "-c", help="corpus config YAML (partial is fine)")


def _fail_config(err: ConfigError) -> NoReturn:
    console.print(f"[red]config error:[/red] {err}")
    raise typer.Exit(2)


def _load(config: Path | None, overrides: dict[str, Any] | None = None) -> CorpusConfig:
    try:
        return load_config(config, overrides)
    except ConfigError as err:
        _fail_config(err)


def _parse_sets(sets: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in sets:
        if "=" not in item:
            _fail_config(ConfigError(f"--set expects key=value, got {item!r}"))
        key, value = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out


def _prefect_env(bars: bool) -> None:
    # Local builds talk to a temporary API; keep them quiet and offline.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    if bars:
        # Beside live bars, Prefect's INFO lines would tear the display; they go to the build's
        # log file instead (read when Prefect configures logging, at its first import).
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")


@contextmanager
def _log_file(path: Path) -> Iterator[None]:
    """Every Prefect record (and WARNING+ of the pipeline) also goes to the build's log."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(
        logging.Formatter("%(asctime)s | %(levelname)-7s | %(name)s - %(message)s")
    )
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()


def print_funnel(funnel: dict[str, Any]) -> None:
    table = Table(title="funnel")
    for col in ("stage", "in", "out", "by source", "dropped"):
        table.add_column(col, justify="right" if col in ("in", "out") else "left")
    for stage, row in funnel.items():
        dropped = ", ".join(f"{k} {v}" for k, v in row["dropped"].items()) or "-"
        sources = ", ".join(f"{k} {v}" for k, v in row.get("by_source", {}).items()) or "-"
        table.add_row(stage, str(row["in"]), str(row["out"]), sources, dropped)
    Console().print(table)


def run_build(
    config: Path | None,
    overrides: dict[str, Any] | None = None,
    progress_interval: float | None = None,
) -> dict[str, Any]:
    """Validate the config, then run the `build_corpus` flow on a temporary Prefect API (or
    the configured one), drawing progress on stderr: bars on a terminal, else a log line
    per interval. Prefect's records go to OUT/logs/build.log, its server's to
    OUT/logs/prefect-server.log."""
    cfg = _load(config, overrides)
    from pipeline.preflight import preflight

    try:
        preflight(cfg)
    except ConfigError as err:
        _fail_config(err)
    root = Path(cfg.out_dir)
    bars = sys.stderr.isatty()
    _prefect_env(bars)
    from flows.build import build_corpus
    from flows.local_api import temporary_api
    from pipeline.progress_view import ProgressView

    try:
        with (
            _log_file(root / "logs" / "build.log"),
            temporary_api(root / "logs" / "prefect-server.log"),
            ProgressView(root, tty=bars, interval=progress_interval),
        ):
            return build_corpus(config_path=str(config) if config else None, overrides=overrides)
    except PartError as err:
        console.print(f"[red]build finished with failed parts:[/red] {err}")
        funnel_path = Path(cfg.out_dir) / "funnel.json"
        if funnel_path.exists():
            print_funnel(json.loads(funnel_path.read_text()))
        raise typer.Exit(1) from None


@app.command()
def build(
    config: Path | None = typer.Argument(None, help="corpus config YAML"),
    config_opt: Path | None = typer.Option(None, "--config", "-c", help="same as CONFIG"),
    set_: list[str] = typer.Option([], "--set", help="override a field: section.field=value"),
    verify: bool = typer.Option(
        False, "--verify", help="hash every file instead of trusting unchanged size and mtime"
    ),
    progress_interval: float | None = typer.Option(
        None,
        "--progress-interval",
        help="seconds between progress updates (default 0.25 on a terminal, 10 otherwise)",
    ),
) -> None:
    """Build a corpus: harvest, crawl, extract, filter, dedup, shards."""
    if verify:
        # Read by pipeline.core.reuse in this process and in every worker it starts.
        os.environ["WEBTEXT_VERIFY"] = "1"
    path = config or config_opt
    if path is None:
        _fail_config(ConfigError("give a config file: webtext build CONFIG"))
    result = run_build(path, _parse_sets(set_), progress_interval)
    print_funnel(result["funnel"])
    out = Path(result["out_dir"])
    console.print(f"shards: {out / 'shards'}\nreport: {out / 'report' / 'index.html'}")


def run_demo(
    out: Path,
    seed: int = 0,
    config: Path | None = None,
    overrides: dict[str, Any] | None = None,
    progress_interval: float | None = None,
) -> dict[str, Any]:
    """Generate the demo web, serve it through a local proxy, build it. Returns the flow's
    result (funnel, failures, parts run and skipped). `config` (a partial YAML) and
    `overrides` are laid over the demo's own settings."""
    import demo as demo_web

    out = out.resolve()
    web = demo_web.generate(out, seed=seed)
    extra: dict[str, Any] = {}
    if config is not None:
        extra = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
        if not isinstance(extra, dict):
            _fail_config(ConfigError(f"invalid config {config}: top level must be a mapping"))
    with demo_web.serve(web) as proxy_url:
        cfg = _deep_merge(demo_web.demo_config(out, web, proxy_url), extra)
        # The proxy port changes every run; keeping it out of the file keeps the file stable.
        cfg.get("crawl", {}).pop("proxy", None)
        config_path = out / "config.yaml"
        config_path.write_text(yaml.safe_dump(cfg, sort_keys=True))
        return run_build(
            config_path, {**(overrides or {}), "crawl.proxy": proxy_url}, progress_interval
        )


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@app.command()
def demo(
    out: Path = typer.Option(Path("demo-out"), "--out", help="output folder"),
    seed: int = typer.Option(0, help="seed of the generated demo web"),
    config: Path | None = typer.Option(
        None, "--config", "-c", help="partial config laid over the demo's settings"
    ),
    set_: list[str] = typer.Option([], "--set", help="override a field: section.field=value"),
    progress_interval: float | None = typer.Option(
        None,
        "--progress-interval",
        help="seconds between progress updates (default 0.25 on a terminal, 10 otherwise)",
    ),
) -> None:
    """Generate a local demo web, serve it on 127.0.0.1 and build a corpus from it."""
    result = run_demo(out, seed, config, _parse_sets(set_), progress_interval)
    print_funnel(result["funnel"])
    out = out.resolve()
    console.print(
        f"parts run {result['parts_run']}, skipped {result['parts_skipped']}\n"
        f"funnel: {out / 'funnel.json'}\nshards: {out / 'shards'} (manifest.json, README.md)\n"
        f"report: {out / 'report' / 'index.html'}"
    )


@app.command("harvest")
def harvest_cmd(
    inputs: list[str] = typer.Argument(..., help="dump files, globs or folders"),
    out: Path = typer.Option(..., "--out", help="output root"),
    config: Path | None = ConfigOpt,
) -> None:
    """Run the harvest stage alone: DIR/links/, DIR/ledger/harvest/, DIR/funnel.json."""
    from pipeline import harvest
    from pipeline.core.stage import write_funnel

    cfg = _load(config)
    stats = harvest.run(
        [str(Path(i).resolve()) if "://" not in i else i for i in inputs], out, cfg.harvest
    )
    print_funnel({"harvest": write_funnel(out, {"harvest": [s.part for s in stats]})["harvest"]})


@app.command("arctic-fetch")
def arctic_fetch_cmd(
    config: Path = typer.Option(..., "--config", "-c", help="corpus config YAML"),
    month: list[str] = typer.Option(
        [], "--month", help="YYYY-MM (repeatable); default: harvest.arctic_shift.months"
    ),
) -> None:
    """Fetch months from the Arctic Shift API into RS_YYYY-MM.zst dumps (resumable)."""
    from pipeline.core.config import check_months
    from pipeline.harvest.arctic_shift import fetch_configured

    cfg = _load(config)
    if not cfg.harvest.arctic_shift.subreddits:
        _fail_config(ConfigError("harvest.arctic_shift.subreddits is empty: nothing to fetch"))
    try:
        check_months(month)
    except ValueError as err:
        _fail_config(ConfigError(f"--month: {err}"))
    results = fetch_configured(cfg.harvest, Path(cfg.out_dir), months=month or None)
    table = Table(title="arctic shift")
    for col in ("month", "status", "posts", "pages", "requests", "file or error"):
        table.add_column(col)
    for r in results:
        table.add_row(
            r.month, r.status, str(r.posts), str(r.pages), str(r.requests), r.path or r.error or ""
        )
    console.print(table)
    if any(r.status in ("failed", "unsettled") for r in results):
        for r in results:
            if r.error:
                console.print(f"[red]{r.month}:[/red] {r.error}")
        raise typer.Exit(1)


@app.command("crawl")
def crawl_cmd(
    links_part: Path = typer.Argument(..., help="a links part (Parquet)"),
    out: Path = typer.Option(..., "--out", help="output root"),
    config: Path | None = ConfigOpt,
) -> None:
    """Crawl one links part: DIR/crawl/fetches/, DIR/crawl/warc/, DIR/ledger/crawl/."""
    from pipeline import crawl

    cfg = _load(config)
    st = crawl.run_part(links_part, out, cfg.crawl)
    print_funnel({"crawl": {"in": st.n_in, "out": st.n_out, "dropped": dict(st.dropped)}})


# Each stage alone over a build folder, through the driver the flow calls, on the parts it
# finds in its input folder (so a user can rerun one stage, or feed parts made elsewhere).
STAGE_INPUTS = {
    "extract": "crawl/fetches",
    "filter": "docs",
    "dedup": "filtered",
    "shards": "dedup",
}
_STAGE_BEFORE = {"extract": "crawl", "filter": "extract", "dedup": "filter", "shards": "dedup"}


def _fail_input(message: str) -> NoReturn:
    console.print(f"[red]no input:[/red] {message}")
    raise typer.Exit(2)


def input_parts(out: Path, stage: str) -> list[Path]:
    """The part files in a stage's input folder; exit code 2 naming the folder when it is
    missing or holds none."""
    folder = Path(out) / STAGE_INPUTS[stage]
    hint = f"(written by `webtext {_STAGE_BEFORE[stage]}` or a build)"
    if not folder.is_dir():
        _fail_input(f"{stage} reads {folder}/part-*.parquet, but {folder} does not exist {hint}")
    parts = sorted(folder.glob("part-*.parquet"))
    if not parts:
        _fail_input(f"{stage} reads {folder}/part-*.parquet, but {folder} holds none {hint}")
    return parts


def _run_stage(stage: str, out: Path, parts: list[Path], run: Any, held: Any = None) -> None:
    """Run `run(part)` for every part (a part that fails is reported, the others go on),
    then write DIR/funnel.json with this stage's parts and print the stage's row."""
    from pipeline.core.stage import failed_part, with_failed, write_funnel

    done: list[str] = []
    failed: list[dict[str, Any]] = []
    for part in parts:
        try:
            for st in run(part):
                done.append(st.part)
        except Exception as err:  # noqa: BLE001 - one part; reported below, exit code 1
            failed.append(failed_part(stage, part.name, held(part) if held else part, out, err))
    funnel = with_failed(write_funnel(out, {stage: done}), failed)
    if failed:
        from pipeline.core.io import atomic_write_json

        atomic_write_json(Path(out) / "funnel.json", funnel)
    print_funnel({stage: funnel[stage]})
    if failed:
        for f in failed:
            console.print(f"[red]{stage}/{f['part']} failed[/red] ({f['rows']} rows): {f['error']}")
        raise typer.Exit(1)


@app.command("extract")
def extract_cmd(
    out: Path = typer.Option(..., "--out", help="build folder (reads crawl/fetches/part-*)"),
    config: Path | None = ConfigOpt,
) -> None:
    """Run the extract stage alone: DIR/crawl/fetches/part-* (+ DIR/links/, WARC files) ->
    DIR/docs/, DIR/ledger/extract/."""
    from pipeline import extract

    cfg = _load(config)
    parts = input_parts(out, "extract")

    def run(fetches: Path) -> list[Any]:
        links = out / "links" / fetches.name
        if not links.is_file():
            raise PartError("extract", fetches.stem, f"{links} is missing (karma, subreddits)")
        return [extract.run_part(links, fetches, out, cfg)]

    _run_stage("extract", out, parts, run)


@app.command("filter")
def filter_cmd(
    out: Path = typer.Option(..., "--out", help="build folder (reads docs/part-*)"),
    config: Path | None = ConfigOpt,
) -> None:
    """Run the filter stage alone: DIR/docs/part-* -> DIR/filtered/, DIR/ledger/filter/."""
    from pipeline import filter as filter_stage
    from pipeline.preflight import preflight_filter

    cfg = _load(config)
    try:  # the build's preflight, minus the harvest inputs this stage does not read
        preflight_filter(cfg)
    except ConfigError as err:
        _fail_config(err)
    parts = input_parts(out, "filter")
    _run_stage("filter", out, parts, lambda p: [filter_stage.run_part(p, out, cfg)])


@app.command("dedup")
def dedup_cmd(
    out: Path = typer.Option(..., "--out", help="build folder (reads filtered/part-*)"),
    config: Path | None = ConfigOpt,
) -> None:
    """Run the dedup stage alone over every part: DIR/filtered/part-* -> DIR/dedup/."""
    from pipeline import dedup

    cfg = _load(config)
    parts = input_parts(out, "dedup")
    # Dedup is global: one run over all parts, as in the flow.
    _run_stage("dedup", out, [out / "filtered"], lambda _: dedup.run(parts, out, cfg))


@app.command("shards")
def shards_cmd(
    out: Path = typer.Option(..., "--out", help="build folder (reads dedup/part-*)"),
    config: Path | None = ConfigOpt,
) -> None:
    """Write the shards alone: DIR/dedup/part-* -> DIR/shards/ (+ manifest.json, README.md)."""
    from pipeline import shards

    cfg = _load(config)
    parts = input_parts(out, "shards")
    _run_stage("shards", out, [out / "dedup"], lambda _: [shards.run(parts, out, cfg)])
    console.print(f"shards: {out / 'shards'}")


@app.command("report")
def report_cmd(
    out: Path = typer.Argument(..., help="output root of a build"),
    config: Path | None = ConfigOpt,
) -> None:
    """Write DIR/report/index.html (one offline page with plots) and DIR/report/summary.json."""
    from pipeline import report

    cfg = _load(config) if config is not None else None
    page = report.run(out, cfg) / "index.html"
    console.print(f"report: {page.resolve()}")


@app.command("wiki-index")
def wiki_index_cmd(
    sources: list[Path] = typer.Argument(
        ..., help="pages-articles dumps (.xml, .xml.bz2), wikimedia/wikipedia Parquet, .txt"
    ),
    out: Path = typer.Option(..., "--out", help="index folder to write"),
    ngram: int = typer.Option(8, "--ngram", help="word n-gram length (wikipedia.ngram)"),
    processes: int = typer.Option(
        os.cpu_count() or 1, "--processes", help="workers parsing dump markup"
    ),
) -> None:
    """Build a Wikipedia n-gram index for `wikipedia.index` and `webtext wiki-strip`."""
    from pipeline.filter.wiki_index import build_index

    try:
        meta = build_index(sources, out, ngram, processes)
    except ConfigError as err:
        _fail_config(err)
    console.print(
        f"{out}: {meta['ngrams']:,} distinct {ngram}-grams of {meta['texts']:,} texts "
        f"in {meta['build_seconds']:.1f} s"
    )


@app.command("wiki-strip")
def wiki_strip_cmd(
    src: Path = typer.Argument(..., help='JSON lines {"id", "text"}'),
    dst: Path = typer.Argument(..., help="JSON lines with wiki_overlap and removed_paragraphs"),
    index: Path = typer.Option(..., "--index", help="index folder from `webtext wiki-index`"),
    threshold: float = typer.Option(
        0.2, "--threshold", help="share of a paragraph's n-grams that removes it"
    ),
) -> None:
    """Remove paragraphs (lines) copied from Wikipedia from any JSON-lines corpus."""
    from pipeline.filter.wiki_index import load_index, read_meta
    from pipeline.filter.wiki_strip import strip_jsonl

    try:
        n = int(read_meta(index)["ngram"])
        counts = strip_jsonl(src, dst, load_index(index), n, threshold)
    except ConfigError as err:
        _fail_config(err)
    console.print(
        f"{dst}: {counts['documents']:,} documents, {counts['paragraphs']:,} paragraphs "
        f"removed from {counts['stripped']:,} of them"
    )


@app.command("overlap")
def overlap_cmd(
    corpus: list[Path] = typer.Argument(
        ...,
        help="a build folder (its dedup parts), a shards folder, or Parquet/JSONL files with "
        "a text column",
    ),
    eval_: list[str] = typer.Option(
        [],
        "--eval",
        help="NAME=FILE: one evaluation example per line (.txt, or .jsonl with a text field); "
        "repeat for more sets (added to the config's overlap.eval_sets)",
    ),
    json_out: Path | None = typer.Option(
        None,
        "--json",
        help="write the figures as JSON here (default for a build folder: BUILD/overlap.json, "
        "which the report shows)",
    ),
    ngram: int | None = typer.Option(None, "--ngram", help="word n-gram length (default 8)"),
    top: int | None = typer.Option(None, "--top", help="documents listed per set (default 10)"),
    config: Path | None = ConfigOpt,
) -> None:
    """GPT-2's overlap audit: the share of each evaluation set's 8-grams found in the corpus."""
    from pipeline import overlap
    from pipeline.core.io import atomic_write_json
    from pipeline.overlap.corpus import build_parts

    cfg = _load(config)
    sets: dict[str, str] = dict(cfg.overlap.eval_sets)
    for item in eval_:
        name, sep, file = item.partition("=")
        if not sep or not name.strip() or not file.strip():
            _fail_config(ConfigError(f"--eval expects NAME=FILE, got {item!r}"))
        sets[name.strip()] = str(Path(file.strip()).resolve())
    if not sets:
        _fail_config(ConfigError("no evaluation sets: give --eval NAME=FILE"))
    try:
        result = overlap.audit(
            corpus,
            sets,
            ngram=cfg.overlap.ngram if ngram is None else ngram,
            top=cfg.overlap.top_documents if top is None else top,
            tokenizer=cfg.tokenizer,
        )
    except ConfigError as err:
        _fail_config(err)
    if json_out is None and len(corpus) == 1 and build_parts(corpus[0]):
        json_out = corpus[0] / overlap.OUTPUT
    if json_out is not None:
        atomic_write_json(json_out, result)
        console.print(f"overlap: {json_out.resolve()}")
    sys.stdout.write(overlap.markdown(result) + "\n")


@app.command("funnel")
def funnel_cmd(out: Path = typer.Argument(..., help="output root of a build")) -> None:
    """Print a build's funnel.json."""
    print_funnel(json.loads((out / "funnel.json").read_text()))


@app.command("export-bin")
def export_bin_cmd(
    shards_dir: Path = typer.Argument(..., help="folder with manifest.json"),
    out: Path = typer.Option(..., "--out", help="where train.bin / val.bin go"),
) -> None:
    """Write nanoGPT-style uint16 train.bin / val.bin from the shards."""
    from pipeline.shards.export import export_bin

    for split, n in export_bin(shards_dir, out).items():
        console.print(f"{out / (split + '.bin')}: {n:,} tokens")


@app.command("check-config")
def check_config(config: Path = typer.Argument(...)) -> None:
    """Validate a config and print it with every default filled in."""
    cfg = _load(config)
    sys.stdout.write(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))


if __name__ == "__main__":
    app()
