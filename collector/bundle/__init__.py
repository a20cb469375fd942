"""Writing bundles in format needle.bundle/v1 (docs/bundle-format.md)."""

from needle.collector.bundle.manifest import (
    CaptureRecord,
    CommandRecord,
    Manifest,
    NetnsRecord,
    NodeRecord,
    ResourceRecord,
)
from needle.collector.bundle.writer import BundleWriter

__all__ = [
    "BundleWriter",
    "CaptureRecord",
    "CommandRecord",
    "Manifest",
    "NetnsRecord",
    "NodeRecord",
    "ResourceRecord",
]
