"""What every stage shares; imports nothing from the stages.

- config.py: the corpus config (pydantic), one section per stage
- errors.py: ConfigError, PartError, RetryableError
- io.py: atomic writes, deterministic Parquet, file hashes
- ledger.py: StageStats (in = out + dropped) and the per-part Ledger; the stage and step names
- stage.py: the done-marker contract (`run_marked`), the funnel
- reuse.py: the one incremental-reuse rule: an earlier outcome is reused when it was made with
  the same config and version from files that are unchanged
- ngrams.py: text normalization and word n-gram hashing (dedup, Wikipedia overlap)
- tokenizer.py: the GPT-2 BPE (tiktoken r50k_base), offline ranks
"""
