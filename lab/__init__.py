"""The network-namespace lab behind `needle lab`: a Flannel VXLAN cluster without a cluster.

Use it from Python through lab.api (up, status, fault, down; see its docstring), read what
a lab is through lab.state.LabState, and probe it with lab.probe. Imports neither the
collector nor the analyzer.
"""
