"""Shards: the training repo's view of the corpus (see DESIGN.md, shard contract).

Reads: dedup/part-NNNNN.parquet. Writes: shards/{train,val}-*.parquet, manifest.json,
README.md. Drops: nothing. Driver: `run` (all parts at once).

Each document's split (val by a hash of its id, stable across rebuilds) and output shard (a
hash of its id keyed with the seed) depend on its id alone. Every dedup part is read in record
batches, tokenized with GPT-2 BPE (EOT appended) and spilled to its documents' shards; then each
shard is ordered by id, shuffled with the seed and written as zstd Parquet, with a manifest and a
Hugging Face dataset card. Memory: a read batch per part and one shard, never the corpus.

- writer.py: `run(parts, root, cfg)`, the stage (shards, manifest.json, README.md card)
- assign.py: `is_val`, `shard_index`: where a document goes
- spill.py: per dedup part, tokenize and append to the shards' spill files
- gather.py: per shard, read its spill, shuffle, write row groups without whole-column concats
- loader.py: `iter_tokens` / `iter_blocks`, token ids as numpy for a training loop
- export.py: `export_bin`, nanoGPT-style train.bin / val.bin
"""

from pipeline.shards.assign import is_val
from pipeline.shards.writer import STAGE, VERSION, dataset_card, run

__all__ = ["STAGE", "VERSION", "dataset_card", "is_val", "run"]
