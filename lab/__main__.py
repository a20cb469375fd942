"""`python -m needle.lab ...`: the lab CLI on its own, for when the needle front door is absent."""

from __future__ import annotations

import sys

from needle.lab.cli import app
from needle.lab.errors import LabError


def main() -> None:
    try:
        app(standalone_mode=False)
    except LabError as exc:
        print(f"needle lab: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
