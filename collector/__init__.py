"""needle's collector: gathers raw evidence into a bundle (docs/bundle-format.md).

Never imports the analyzer; the two agree only through the bundle format.
"""
