"""Shards: the training repo's view of the corpus (see DESIGN.md, shard contract).

Reads: dedup/part-NNNNN.parquet. Writes: shards/{train,val}-*.parquet, manifest.json,
README.md. Drops: nothing. Driver: `run` (all parts at once).

Documents from every dedup part are sorted by id, split train/val by a hash of the id (stable
across rebuilds), shuffled with the configured seed, tokenized with GPT-2 BPE (EOT appended)
and written as zstd Parquet with a manifest and a Hugging Face dataset card.

- writer.py: `run(parts, root, cfg)`, the stage (shards, manifest.json, README.md card)
- loader.py: `iter_tokens` / `iter_blocks`, token ids as numpy for a training loop
- export.py: `export_bin`, nanoGPT-style train.bin / val.bin
"""

from pipeline.shards.writer import STAGE, VERSION, dataset_card, is_val, run

__all__ = ["STAGE", "VERSION", "dataset_card", "is_val", "run"]
