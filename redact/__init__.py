"""Redaction that keeps the network analysable: keyed, consistent, prefix-preserving."""
