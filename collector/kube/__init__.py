"""Kubernetes objects: from the API, or from kubectl dumps."""
