"""Prefect orchestration over pipeline/: thin tasks that take and return paths."""
