"""The collection spec: what runs on a node, declared once as data (node.yaml)."""
