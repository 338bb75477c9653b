"""The contracts between stages: every record that crosses a stage boundary is defined here."""

from schemas.records import (
    DOCS_SCHEMA,
    FETCH_SCHEMA,
    FILTERED_SCHEMA,
    LEDGER_SCHEMA,
    LINKS_SCHEMA,
    SHARD_SCHEMA_BASE,
    SIGNATURE_SCHEMA,
    DocRecord,
    FetchRecord,
    LedgerRow,
    LinkRecord,
    doc_id,
    shard_schema,
)

__all__ = [
    "DOCS_SCHEMA",
    "FETCH_SCHEMA",
    "FILTERED_SCHEMA",
    "LEDGER_SCHEMA",
    "LINKS_SCHEMA",
    "SHARD_SCHEMA_BASE",
    "SIGNATURE_SCHEMA",
    "DocRecord",
    "FetchRecord",
    "LedgerRow",
    "LinkRecord",
    "doc_id",
    "shard_schema",
]
