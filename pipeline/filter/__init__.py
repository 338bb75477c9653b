"""filter stage: apply config thresholds to the signals that extract stored.

Reads: docs/part-NNNNN.parquet (+ a Wikipedia reference and evaluation sets when configured).
Writes: filtered/part-NNNNN.parquet (schemas.FILTERED_SCHEMA), ledger/filter/. Drops: the name
of the first rule a document fails (filter.rules.RULES). Driver: `run_part`.

Score, then filter: extract computes the signals once; this cheap step reads them, so a new
threshold reruns only filter and what follows. The first failing rule is the drop reason, in
a fixed order (wikipedia, wikipedia_copy, eval_overlap, wrong_language, too_short, too_long,
then the quality rules, each named after its config field), and every drop is a ledger row
with the value that failed.

Two signals are computed here because they need a reference, both off by default:
- with `wikipedia.sources` (dumps, wikimedia/wikipedia Parquet, .txt) or `wikipedia.index`,
  paragraphs copied from Wikipedia are removed (wiki_strip.py, index in wiki_index.py,
  sources in wiki_sources.py); a document left under the length floor is `wikipedia_copy`;
- with `decontaminate.eval_sets`, documents sharing 13-grams with an evaluation example are
  `eval_overlap` (decontaminate.py).
The references' content is part of the config fingerprint, so a new one re-filters.
"""

from pipeline.filter.driver import STAGE, VERSION, run_part
from pipeline.filter.rules import RULES, check, is_wikipedia

__all__ = ["RULES", "STAGE", "VERSION", "check", "is_wikipedia", "run_part"]
