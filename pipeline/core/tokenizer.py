"""GPT-2 BPE through tiktoken's r50k_base, usable offline.

tiktoken downloads its ranks on first use. Offline, either `tokenizer.ranks_file` names a
local copy, or TIKTOKEN_CACHE_DIR holds it under the sha1 of its URL (see README).
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache
from pathlib import Path

import tiktoken

from pipeline.core.config import TokenizerConfig
from pipeline.core.errors import ConfigError

R50K_URL = "https://openaipublic.blob.core.windows.net/encodings/r50k_base.tiktoken"
R50K_SHA256 = "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"
# r50k_base's pattern: the GPT-2 pre-tokenizer.
R50K_PAT = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
EOT_ID = 50256


def cache_key() -> str:
    """File name tiktoken looks for in TIKTOKEN_CACHE_DIR."""
    return hashlib.sha1(R50K_URL.encode()).hexdigest()


@lru_cache(maxsize=4)
def _encoding_from_file(path: str) -> tiktoken.Encoding:
    ranks: dict[bytes, int] = {}
    for line in Path(path).read_bytes().splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return tiktoken.Encoding(
        name="r50k_base",
        pat_str=R50K_PAT,
        mergeable_ranks=ranks,
        special_tokens={"<|endoftext|>": EOT_ID},
        explicit_n_vocab=50257,
    )


def get_encoding(cfg: TokenizerConfig | None = None) -> tiktoken.Encoding:
    """The configured encoding (immutable, so sharing one instance keeps runs deterministic)."""
    cfg = cfg or TokenizerConfig()
    if cfg.ranks_file:
        if not Path(cfg.ranks_file).is_file():
            raise ConfigError(f"tokenizer.ranks_file: file not found: {cfg.ranks_file}")
        return _encoding_from_file(cfg.ranks_file)
    return tiktoken.get_encoding("r50k_base")


def ranks_sha256(cfg: TokenizerConfig | None = None) -> str:
    cfg = cfg or TokenizerConfig()
    if cfg.ranks_file:
        return hashlib.sha256(Path(cfg.ranks_file).read_bytes()).hexdigest()
    return R50K_SHA256


def encode_docs(enc: tiktoken.Encoding, texts: list[str], num_threads: int = 2) -> list[list[int]]:
    """Token ids per document, EOT appended. `encode_ordinary`: a literal <|endoftext|> in web
    text is text, never the control token."""
    batches = enc.encode_ordinary_batch(texts, num_threads=num_threads)
    for ids in batches:
        ids.append(EOT_ID)
    return batches
