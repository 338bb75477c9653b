"""The build's progress as Prefect progress artifacts: one per stage, updated while it runs.

The same figures as the CLI's bars (pipeline.core.progress.read_progress), so a deployment
run shows them in the Prefect UI. A thread polls the build folder; it runs in a copy of the
flow run's context, so the artifacts belong to the flow run.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Self
from uuid import UUID

from prefect.artifacts import create_progress_artifact, update_progress_artifact

from pipeline.core.progress import Poller, StageProgress, read_progress
from pipeline.progress_view import describe

log = logging.getLogger(__name__)


def _percent(sp: StageProgress) -> float:
    if sp.parts_total and sp.parts_done >= sp.parts_total:
        return 100.0
    if sp.items_total:
        return min(99.9, 100.0 * sp.items_done / sp.items_total)
    return 100.0 * sp.parts_done / sp.parts_total if sp.parts_total else 0.0


class ProgressArtifacts:
    def __init__(self, root: Path, corpus: str, interval: float = 5.0):
        self.root = Path(root)
        self.prefix = re.sub(r"[^a-z0-9-]+", "-", f"progress-{corpus}".lower())
        self.interval = interval
        self._ids: dict[str, UUID] = {}
        self._sent: dict[str, float] = {}

    def publish(self) -> None:
        for stage, sp in read_progress(self.root).items():
            pct = round(_percent(sp), 1)
            if self._sent.get(stage) == pct:
                continue
            if stage not in self._ids:
                artifact_id = create_progress_artifact(
                    progress=pct, key=f"{self.prefix}-{stage}", description=describe(sp)
                )
                assert isinstance(artifact_id, UUID)  # called sync: never a coroutine
                self._ids[stage] = artifact_id
            else:
                update_progress_artifact(self._ids[stage], progress=pct, description=describe(sp))
            self._sent[stage] = pct

    def __enter__(self) -> Self:
        self._poller = Poller(self.publish, self.interval, "webtext-artifacts").__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._poller.__exit__()
        try:
            self.publish()  # the final figures, from the flow's own thread
        except Exception as err:  # noqa: BLE001
            log.debug("progress artifact update failed: %s", err)
