"""Errors the lab reports to a user: one line that says what to do."""


class LabError(Exception):
    """A lab operation that cannot go on (not root, no vxlan, a lab already up, ...)."""
