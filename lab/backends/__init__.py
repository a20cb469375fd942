"""The data planes `needle lab up --backend` builds, one module each, behind one interface
(base.Backend). Everything that names a device, a port or an overhead lives here."""

from __future__ import annotations

from needle.lab.backends.base import Backend
from needle.lab.backends.canal import Canal
from needle.lab.backends.directrouting import DirectRouting
from needle.lab.backends.hostgw import HostGw
from needle.lab.backends.vxlan import Vxlan
from needle.lab.errors import LabError

DEFAULT = Vxlan.name
BACKENDS: dict[str, Backend] = {
    backend.name: backend for backend in (Vxlan(), DirectRouting(), HostGw(), Canal())
}
NAMES = tuple(BACKENDS)


def get(name: str) -> Backend:
    """The backend called `name`; LabError naming the choices if there is none."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise LabError(f"unknown backend {name!r}; choose one of: {', '.join(BACKENDS)}") from None
