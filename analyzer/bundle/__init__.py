"""Reading bundles in format needle.bundle/v1 (docs/bundle-format.md)."""

from needle.analyzer.bundle.reader import (
    Bundle,
    ReadLimits,
    open_and_build,
    open_bundle,
    open_bundles,
)

__all__ = ["Bundle", "ReadLimits", "open_and_build", "open_bundle", "open_bundles"]
