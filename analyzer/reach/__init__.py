"""Reachability for `needle analyze`: every pair of pods and nodes walked as `needle trace`
walks one, by class (signatures.py, plan.py, judge.py), and the hops where packets die
as findings (findings.py)."""
