"""The fields of the record lines the node script writes (tab-separated, `-` for none)."""

from __future__ import annotations


def field_value(value: str) -> str | None:
    """A record field, or None for the script's `-` (or nothing)."""
    return None if value in {"-", ""} else value


def uptime_delta(start: str, end: str) -> float | None:
    """Seconds between two /proc/uptime readings, or None when one is not a number."""
    try:
        return round(max(0.0, float(end) - float(start)), 3)
    except ValueError:
        return None


def whole_number(value: str) -> int | None:
    return int(value) if value.lstrip("-").isdigit() and len(value) < 12 else None
