"""The network-namespace lab behind `needle lab`: a Flannel VXLAN cluster without a cluster.

Imports neither the collector nor the analyzer.
"""
