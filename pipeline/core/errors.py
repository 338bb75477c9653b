"""The three kinds of failure a stage can report (see DESIGN.md, stage contract)."""


class WebtextError(Exception):
    """Base of webtext's own errors."""


class ConfigError(WebtextError):
    """The config is invalid: reported before any work starts, exit code 2."""


class PartError(WebtextError):
    """One part failed; the build records it, goes on, and reports it at the end."""

    def __init__(self, stage: str, part: str, message: str):
        super().__init__(f"{stage}/{part}: {message}")
        self.stage = stage
        self.part = part


class RetryableError(WebtextError):
    """Network or storage trouble: the only kind Prefect retries."""
