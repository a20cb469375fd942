"""Rules: loading and validating rule files (the engine lands with the rules issue)."""
