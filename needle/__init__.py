"""needle's front door: the `needle` and `kubectl-needle` commands. Wiring only, no logic."""
