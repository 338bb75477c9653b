"""overlap: GPT-2's train/test overlap audit (Radford et al. 2019, the 8-gram overlap table).

Reads: dedup/part-NNNNN.parquet (id, url, text: the documents of the shards) and the
evaluation files named by `overlap.eval_sets`. Writes: overlap.json in the build folder (the
report's "Evaluation overlap" table). Drops: nothing. Driver: `run(root, cfg)` (the whole
build at once, after the shards; no done marker: cheap, and always the folder as it is).

Per evaluation set: the share of its distinct word 8-grams (GPT-2's normalization, see
text.py) that occur anywhere in the corpus, how many of its examples have one, and the
documents holding the most. Exact 64-bit hashes in a sorted array replace GPT-2's Bloom filter
(collision rate in evalsets.py). Memory is bounded by the evaluation sets, not the corpus:
corpus record batches are streamed and hashed vectorized.

- text.py: `normalize` (GPT-2's normalization of a line), n-gram hashes of normalized lines
- evalsets.py: reading evaluation files, `EvalIndex` of their distinct n-gram hashes
- corpus.py: the documents of a build folder, a shards folder or Parquet/JSONL files
- driver.py: `audit(corpus, eval_sets, ngram, top) -> dict`, `markdown(result)`, `run`
"""

from pipeline.overlap.driver import OUTPUT, STAGE, VERSION, audit, markdown, run
from pipeline.overlap.evalsets import EvalIndex, check_eval_sets, iter_examples
from pipeline.overlap.text import normalize, normalized_lines

__all__ = [
    "OUTPUT",
    "STAGE",
    "VERSION",
    "EvalIndex",
    "audit",
    "check_eval_sets",
    "iter_examples",
    "markdown",
    "normalize",
    "normalized_lines",
    "run",
]
