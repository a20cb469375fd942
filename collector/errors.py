"""Errors the collector reports to a user: one line that says what to do."""


class CollectorError(Exception):
    """Collection cannot go on: bad arguments, an unwritable output, no cluster access."""
