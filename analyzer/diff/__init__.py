"""`needle diff`: what changed in the network between two bundles, and what it fixed or
broke."""
