"""The one error redaction raises: the CLI turns it into its one-line message without
importing redaction itself."""

from __future__ import annotations


class RedactError(Exception):
    """Redaction could not be done; nothing was written. One sentence."""
