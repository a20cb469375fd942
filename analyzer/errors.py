"""Errors the analyzer reports to a user: one line that says what to do."""


class AnalyzerError(Exception):
    """Analysis cannot go on: an unreadable bundle, an invalid rule, bad arguments."""


class BundleError(AnalyzerError):
    """The bundle is unreadable, hostile, or not in a format this needle understands."""


class NotBuiltYet(AnalyzerError):
    """A command of the CLI contract whose implementation has not landed yet."""

    def __init__(self, command: str, issue: int) -> None:
        super().__init__(f"`needle {command}` is not built yet (issue #{issue})")
