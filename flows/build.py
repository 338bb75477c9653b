"""The `build_corpus` flow: harvest -> crawl -> extract -> filter -> dedup -> shards, then the
evaluation-set overlap audit (when `overlap.eval_sets` names any) and the report.

Each task wraps one pipeline driver and passes paths; every driver skips parts whose done
marker matches, so a rerun (or a retry after a crash) redoes only unfinished work. A part that
fails is reported at the end; the other parts go on to the shards, which are published with
`partial: true` and the failed parts in the manifest; funnel.json lists each failed part under
its stage with the input it held (README: "Failed parts").
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.context import get_run_context
from prefect.task_runners import ThreadPoolTaskRunner

from flows.arctic_shift import fetch_arctic_months
from flows.progress import ProgressArtifacts
from flows.reddit import fetch_api_months
from flows.runners import make_task_runner
from pipeline import crawl, dedup, extract, harvest, overlap, report, shards
from pipeline import filter as filter_stage
from pipeline.core import progress
from pipeline.core.config import CorpusConfig, load_config, parse_config
from pipeline.core.errors import PartError, RetryableError
from pipeline.core.io import atomic_write_json, part_name
from pipeline.core.ledger import StageStats
from pipeline.core.stage import failed_part, funnel_from_stats, with_failed
from pipeline.preflight import preflight


def _retry_only_retryable(task: Any, task_run: Any, state: Any) -> bool:
    try:
        state.result()
    except RetryableError:
        return True
    except Exception:  # noqa: BLE001 - anything else is not worth a retry
        return False
    return False


def _cfg(data: dict[str, Any]) -> CorpusConfig:
    return parse_config(data)


_TASK_OPTS: dict[str, Any] = {
    "retries": 2,
    "retry_delay_seconds": 5,
    "retry_condition_fn": _retry_only_retryable,
}


@task(name="harvest", **_TASK_OPTS)
def harvest_task(cfg_data: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    cfg = _cfg(cfg_data)
    root = Path(cfg.out_dir)
    stats = harvest.run(cfg.harvest.inputs, root, cfg.harvest)
    return [str(p) for p in harvest.links_parts(root, cfg.harvest)], [s.to_json() for s in stats]


@task(name="crawl", **_TASK_OPTS)
def crawl_task(links_part: str, cfg_data: dict[str, Any]) -> dict[str, Any]:
    cfg = _cfg(cfg_data)
    return crawl.run_part(Path(links_part), Path(cfg.out_dir), cfg.crawl).to_json()


@task(name="extract", **_TASK_OPTS)
def extract_task(links_part: str, cfg_data: dict[str, Any]) -> dict[str, Any]:
    cfg = _cfg(cfg_data)
    root = Path(cfg.out_dir)
    fetches = root / "crawl" / "fetches" / Path(links_part).name
    return extract.run_part(Path(links_part), fetches, root, cfg).to_json()


@task(name="filter", **_TASK_OPTS)
def filter_task(part_name: str, cfg_data: dict[str, Any]) -> dict[str, Any]:
    cfg = _cfg(cfg_data)
    root = Path(cfg.out_dir)
    return filter_stage.run_part(root / "docs" / part_name, root, cfg).to_json()


@task(name="dedup", **_TASK_OPTS)
def dedup_task(part_names: list[str], cfg_data: dict[str, Any]) -> list[dict[str, Any]]:
    cfg = _cfg(cfg_data)
    root = Path(cfg.out_dir)
    parts = [root / "filtered" / name for name in part_names]
    return [s.to_json() for s in dedup.run(parts, root, cfg)]


@task(name="shards", **_TASK_OPTS)
def shards_task(
    part_names: list[str], cfg_data: dict[str, Any], failed: list[dict[str, Any]]
) -> dict[str, Any]:
    cfg = _cfg(cfg_data)
    root = Path(cfg.out_dir)
    parts = [root / "dedup" / n for n in part_names]
    return shards.run(parts, root, cfg, failed_parts=failed).to_json()


@task(name="overlap", **_TASK_OPTS)
def overlap_task(cfg_data: dict[str, Any]) -> dict[str, Any]:
    cfg = _cfg(cfg_data)
    return overlap.run(Path(cfg.out_dir), cfg)


@task(name="report", **_TASK_OPTS)
def report_task(cfg_data: dict[str, Any]) -> str:
    cfg = _cfg(cfg_data)
    return str(report.run(Path(cfg.out_dir), cfg))


def _map_parts(
    task_fn: Any,
    names: list[str],
    args: list[Any],
    cfg_data: dict[str, Any],
    failures: list[dict[str, Any]],
    stage: str,
    held: list[Path],
) -> tuple[list[str], list[StageStats]]:
    """Submit one task per part, wait for all; return the parts that succeeded. A part that
    failed is added to `failures` with `held[i]`, the input whose rows it held."""
    root = Path(_cfg(cfg_data).out_dir)
    progress.write_plan(root, stage, [n.split(".")[0] for n in names])
    futures = [(name, task_fn.submit(arg, cfg_data)) for name, arg in zip(names, args)]
    ok: list[str] = []
    stats: list[StageStats] = []
    for (name, fut), inp in zip(futures, held):
        fut.wait()
        if fut.state.is_completed():
            stats.append(StageStats.from_json(fut.result()))
            ok.append(name)
            continue
        try:
            fut.result()
        except Exception as err:  # noqa: BLE001 - recorded, reported at the end
            failures.append(failed_part(stage, name, inp, root, err))
    return ok, stats


@flow(name="crawl-parts")
def crawl_parts(names: list[str], cfg_data: dict[str, Any]) -> dict[str, Any]:
    root = Path(_cfg(cfg_data).out_dir)
    links = [root / "links" / n for n in names]
    failed: list[dict[str, Any]] = []
    ok, stats = _map_parts(
        crawl_task, names, [str(p) for p in links], cfg_data, failed, "crawl", links
    )
    return {"ok": ok, "stats": [s.to_json() for s in stats], "failed": failed}


def _crawl_parts(
    names: list[str], cfg: CorpusConfig, cfg_data: dict[str, Any], failed: list[dict[str, Any]]
) -> tuple[list[str], list[StageStats]]:
    """Crawl parts wait on the network, not the CPU: with the local runner they get a pool of
    their own, `crawl.parallel_parts` wide, so every part's largest sites (whose politeness
    sets the part's length) start at once instead of one round of parts after another."""
    if cfg.runner.kind != "threads":
        links = [Path(cfg.out_dir) / "links" / n for n in names]
        args = [str(p) for p in links]
        return _map_parts(crawl_task, names, args, cfg_data, failed, "crawl", links)
    pool: Any = ThreadPoolTaskRunner(max_workers=cfg.crawl.parallel_parts)
    result = crawl_parts.with_options(task_runner=pool)(names, cfg_data)
    failed += result["failed"]
    return result["ok"], [StageStats.from_json(s) for s in result["stats"]]


@flow(name="build-stages")
def build_stages(cfg_data: dict[str, Any]) -> dict[str, Any]:
    logger = get_run_logger()
    cfg = _cfg(cfg_data)
    root = Path(cfg.out_dir)
    failures: list[str] = []
    failed: list[dict[str, Any]] = []  # failed parts: {stage, part, input, rows, error}
    all_stats: list[StageStats] = []

    progress.clear(root)
    with ProgressArtifacts(root, cfg.name):
        if cfg.harvest.api.subreddits:
            api_dumps = fetch_api_months(cfg.harvest.api.model_dump(mode="json"), str(root))
            cfg_data = {
                **cfg_data,
                "harvest": {**cfg_data["harvest"], "inputs": cfg.harvest.inputs + api_dumps},
            }
        if cfg.harvest.arctic_shift.subreddits:
            arctic_dumps, arctic_failures = fetch_arctic_months(cfg_data)
            failures += arctic_failures
            inputs = cfg_data["harvest"]["inputs"]
            cfg_data = {
                **cfg_data,
                "harvest": {**cfg_data["harvest"], "inputs": inputs + arctic_dumps},
            }
        progress.write_plan(root, "harvest", [part_name(i) for i in range(cfg.harvest.n_parts)])
        links_paths, harvest_stats = harvest_task(cfg_data)
        all_stats += [StageStats.from_json(s) for s in harvest_stats]
        names = [Path(p).name for p in links_paths]
        logger.info("harvest: %d links parts", len(names))

        names, st = _crawl_parts(names, cfg, cfg_data, failed)
        all_stats += st
        names, st = _map_parts(
            extract_task,
            names,
            [str(root / "links" / n) for n in names],
            cfg_data,
            failed,
            "extract",
            [root / "crawl" / "fetches" / n for n in names],
        )
        all_stats += st
        docs = [root / "docs" / n for n in names]
        names, st = _map_parts(filter_task, names, names, cfg_data, failed, "filter", docs)
        all_stats += st

        progress.write_plan(root, "dedup", [n.split(".")[0] for n in names])
        all_stats += [StageStats.from_json(s) for s in dedup_task(sorted(names), cfg_data)]
        progress.write_plan(root, "shards", ["all"])
        all_stats.append(StageStats.from_json(shards_task(sorted(names), cfg_data, failed)))

    funnel = with_failed(funnel_from_stats(all_stats), failed)
    failures += [f"{f['stage']}/{f['part']}: {f['error']}" for f in failed]
    atomic_write_json(root / "funnel.json", funnel)
    skipped = sum(1 for s in all_stats if s.extra.get("skipped"))
    create_markdown_artifact(
        key=_artifact_key("funnel", cfg.name),
        markdown=funnel_markdown(funnel),
        description=f"webtext funnel of {cfg.name}",
    )
    if cfg.overlap.eval_sets:
        try:
            audit = overlap_task(cfg_data)
        except Exception as err:  # noqa: BLE001 - the shards stand; the failure is reported
            failures.append(f"overlap: {type(err).__name__}: {err}")
        else:
            create_markdown_artifact(
                key=_artifact_key("overlap", cfg.name),
                markdown=overlap.markdown(audit),
                description=f"webtext evaluation-set overlap of {cfg.name}",
            )
    try:
        report_dir = Path(report_task(cfg_data))
    except Exception as err:  # noqa: BLE001 - the shards stand; the failure is reported
        failures.append(f"report: {type(err).__name__}: {err}")
    else:
        summary = json.loads((report_dir / "summary.json").read_text())
        create_markdown_artifact(
            key=_artifact_key("report", cfg.name),
            markdown=report_markdown(summary, report_dir / "index.html"),
            description=f"webtext report of {cfg.name}",
        )
        create_link_artifact(
            key=_artifact_key("report-link", cfg.name),
            link=(report_dir / "index.html").resolve().as_uri(),
            link_text=f"report of {cfg.name}",
            description="report/index.html: one self-contained page, opens offline",
        )
    result = {
        "out_dir": str(root),
        "funnel": funnel,
        "failures": failures,
        "failed_parts": failed,
        "parts_run": len(all_stats) - skipped,
        "parts_skipped": skipped,
        # The run that owns this build's artifacts (progress, funnel, report).
        "flow_run_id": str(get_run_context().flow_run.id),  # type: ignore[union-attr]
    }
    if failures:
        logger.error("%d parts failed:\n%s", len(failures), "\n".join(failures))
        raise PartError("build", "*", f"{len(failures)} parts failed: " + "; ".join(failures))
    return result


def _artifact_key(kind: str, corpus: str) -> str:
    # Artifact keys allow only lowercase letters, digits and dashes.
    return re.sub(r"[^a-z0-9-]+", "-", f"{kind}-{corpus}".lower())


def report_markdown(summary: dict[str, Any], page: Path) -> str:
    """The report's key figures: what was built and where the drops went."""
    totals = (summary.get("manifest") or {}).get("totals") or {}
    lines = [
        f"**{summary['corpus'].get('name')}**: report at `{page}`",
        "",
        "| figure | value |",
        "|---|---:|",
        f"| documents | {totals.get('rows', 0):,} |",
        f"| tokens | {totals.get('tokens', 0):,} |",
        f"| train / val documents | {totals.get('train_rows', 0):,} / {totals.get('val_rows', 0):,} |",
    ]
    drops = [
        (row["count"], stage, reason)
        for stage, reasons in (summary.get("drops") or {}).items()
        for reason, row in reasons.items()
    ]
    for count, stage, reason in sorted(drops, key=lambda d: (-d[0], d[1], d[2]))[:8]:
        lines.append(f"| dropped in {stage}: {reason} | {count:,} |")
    return "\n".join(lines)


def funnel_markdown(funnel: dict[str, Any]) -> str:
    lines = ["| stage | in | out | dropped |", "|---|---:|---:|---|"]
    for stage, row in funnel.items():
        dropped = ", ".join(f"{k}: {v}" for k, v in row["dropped"].items()) or "-"
        for f in row.get("failed", []):
            dropped += f"; FAILED {f['part']} ({f['rows']} rows not processed)"
        lines.append(f"| {stage} | {row['in']} | {row['out']} | {dropped} |")
    return "\n".join(lines)


@flow(name="build-corpus", log_prints=True)
def build_corpus(
    config_path: str | None = None, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Entry point for `webtext build` and deployments: load the config (failing before any
    work), then run the stages on the task runner the config names."""
    cfg = load_config(config_path, overrides)
    preflight(cfg)
    runner = make_task_runner(cfg.runner)
    return build_stages.with_options(task_runner=runner)(cfg.model_dump(mode="json"))
