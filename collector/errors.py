"""Errors the collector reports to a user: one line that says what to do."""


class CollectorError(Exception):
    """Collection cannot go on: bad arguments, an unwritable output, no cluster access."""


class NotBuiltYet(CollectorError):
    """A command of the CLI contract whose implementation has not landed yet."""

    def __init__(self, command: str, issue: int) -> None:
        super().__init__(f"`needle {command}` is not built yet (issue #{issue})")
