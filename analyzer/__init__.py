"""needle's analyzer: reads a bundle offline, models the network, judges it with rules.

Never imports the collector; the two agree only through the bundle format.
"""
