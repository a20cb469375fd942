"""The network-namespace lab behind `needle lab`: a Flannel-family cluster without a cluster.

Use it from Python through needle.lab.api (up, status, fault, down; see its docstring), read what
a lab is through needle.lab.state.LabState, and probe it with needle.lab.probe. Imports neither the
collector nor the analyzer.
"""
