"""needle analyze --format html: one self-contained page (page.py)."""
