"""nanoGPT-style export: every token id of a split as raw uint16 in train.bin / val.bin."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.shards.loader import iter_tokens, read_manifest, token_dtype


def export_bin(shards_dir: Path, out_dir: Path) -> dict[str, int]:
    """Write nanoGPT-style `train.bin` / `val.bin`: all token ids of a split as raw uint16."""
    shards_dir, out_dir = Path(shards_dir), Path(out_dir)
    manifest = read_manifest(shards_dir)
    if token_dtype(manifest) is not np.uint16:
        raise ValueError("nanoGPT .bin files hold uint16; this vocabulary needs uint32")
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, int] = {}
    for split in ("train", "val"):
        if not any(e["split"] == split for e in manifest["shards"]):
            continue
        target = out_dir / f"{split}.bin"
        tmp = target.with_suffix(".bin.tmp")
        n = 0
        with open(tmp, "wb") as f:
            for chunk in iter_tokens(shards_dir, split):
                f.write(chunk.astype("<u2", copy=False).tobytes())
                n += chunk.size
        tmp.replace(target)
        written[split] = n
    return written
