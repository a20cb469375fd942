"""Errors the analyzer reports to a user: one line that says what to do."""


class AnalyzerError(Exception):
    """Analysis cannot go on: an unreadable bundle, an invalid rule, bad arguments."""


class BundleError(AnalyzerError):
    """The bundle is unreadable, hostile, or not in a format this needle understands."""
