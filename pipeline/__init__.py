"""webtext: build WebText-like corpora. Pure Python stages; no Prefect import below this package."""

__version__ = "0.1.0"
