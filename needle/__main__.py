"""`python -m needle` runs the same CLI as the `needle` command."""

from needle.cli import main

raise SystemExit(main())
