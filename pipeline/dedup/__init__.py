"""Dedup stage: exact (normalized-text hash) and near (MinHash LSH) duplicates, global across

Reads: filtered/part-NNNNN.parquet (+ earlier builds' signatures). Writes:
dedup/part-NNNNN.parquet, dedup/signatures/, ledger/dedup/. Drops: exact_duplicate,
near_duplicate (detail: the kept id). Driver: `run` (all parts at once).
all parts of a build and against the signatures of earlier builds.

Three steps, each restartable through the done markers of pipeline.core.stage:
1. per part, `dedup_signatures`: dedup/signatures/<part>.parquet (SIGNATURE_SCHEMA), no text;
   its marker fingerprints only the fields that shape a signature, so changing the threshold
   or the bands does not recompute them. A step of dedup (core.ledger.STEPS), not a funnel
   stage: it drops nothing and must not count twice in the funnel.
2. once, and only if some part of step 3 has to run: clustering over all signature parts plus
   the kept documents of `dedup.reference_roots` (pipeline.dedup.lsh).
3. per part, `dedup`: dedup/<part>.parquet with the kept documents in input order, and
   ledger/dedup/<part>.parquet naming, for each dropped document, the kept id. Its inputs are
   the part plus every signature file, so a part is redone exactly when something that could
   change its drops changed.
"""

from pipeline.dedup.driver import SIGNATURE_STAGE, STAGE, VERSION, cluster, decide, run

__all__ = ["SIGNATURE_STAGE", "STAGE", "VERSION", "cluster", "decide", "run"]
