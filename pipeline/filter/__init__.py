"""filter stage: apply config thresholds to the signals that extract stored.

Reads: docs/part-NNNNN.parquet. Writes: filtered/part-NNNNN.parquet, ledger/filter/. Drops:
the name of the first rule a document fails (filter.rules.RULES). Driver: `run_part`.

Score, then filter: extract computes the signals once; this cheap step reads them, so a new
threshold reruns only filter and what follows. The first failing rule is the drop reason, in
a fixed order (wikipedia, wikipedia_overlap, wrong_language, too_short, too_long, then the
quality rules, each named after its config field), and every drop is a ledger row with the
value that failed.

wikipedia_overlap is the one signal computed here rather than in extract: it needs the
n-gram index of a Wikipedia dump (pipeline.filter.wikipedia), which is off by default. When
`filter.wikipedia_dump` is set, every document's overlap is written to `wiki_overlap` and
the dump's content identity joins the config fingerprint, so a new dump re-filters.
"""

from pipeline.filter.driver import STAGE, VERSION, run_part
from pipeline.filter.rules import RULES, check, is_wikipedia

__all__ = ["RULES", "STAGE", "VERSION", "check", "is_wikipedia", "run_part"]
