"""The one node-side program: the spec rendered into a POSIX sh script."""
