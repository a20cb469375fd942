"""Data planes needle knows: the interface (base.py), Flannel's vxlan and host-gw
(flannel.py), Canal (canal.py), and how a bundle's is detected (detection.py).

Adding one: docs/adding-a-backend.md.
"""

from needle.analyzer.backends.base import Backend, Evidence, ExpectedRoute, Overlay, PodAttach
from needle.analyzer.backends.detection import CHOICES, Detection, backend_of, detect

__all__ = [
    "CHOICES",
    "Backend",
    "Detection",
    "Evidence",
    "ExpectedRoute",
    "Overlay",
    "PodAttach",
    "backend_of",
    "detect",
]
