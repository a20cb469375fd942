"""Reports of an analysis: JSON (the DESIGN.md §5 contract), text and markdown."""
