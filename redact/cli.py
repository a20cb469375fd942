"""`needle redact`: a copy of a bundle fit to leave the customer's site."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from needle.redact.keys import KeyFileError, read_key_file
from needle.redact.run import RedactError, redact_bundle

app = typer.Typer()


@app.command(rich_help_panel="Share")
def redact(
    source: Annotated[
        Path,
        typer.Argument(
            metavar="IN", help="A bundle: .tar.gz, .tar.zst, .tar or an unpacked directory."
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "-o", "--output", metavar="OUT", help="The redacted bundle: .tar.gz or .tar.zst."
        ),
    ],
    key_file: Annotated[
        Path | None,
        typer.Option(
            "--key-file",
            metavar="FILE",
            help="A secret of 32 bytes or more (head -c 32 /dev/urandom > FILE): the same key "
            "maps every bundle the same way, so a before/after pair still diffs. Without it a "
            "random key is used and forgotten.",
        ),
    ] = None,
    keep_names: Annotated[
        bool,
        typer.Option("--keep-names", help="Keep node, namespace, pod, host and interface names."),
    ] = False,
    map_out: Annotated[
        Path | None,
        typer.Option(
            "--map-out",
            metavar="FILE",
            help="Write the mapping here: names, interfaces, addresses and MACs (it reverses "
            "the redaction: for the customer only).",
        ),
    ] = None,
) -> None:
    """Redact a bundle so it can leave the site and still be analysed: addresses are
    mapped prefix-preserving (Crypto-PAn; pod CIDRs, gateways and VTEPs keep their
    relations), MACs and names consistently, secrets removed, captures rewritten to their
    headers. `needle analyze` gives the redacted bundle the same findings.

    \b
    Examples:
    $ needle redact cluster.tar.gz -o cluster-redacted.tar.gz
    $ needle redact before.tar.gz -o before-r.tar.gz --key-file site.key
    $ needle redact after.tar.gz -o after-r.tar.gz --key-file site.key
    """
    try:
        secret = read_key_file(key_file) if key_file is not None else None
        result = redact_bundle(
            source, output, secret=secret, keep_names=keep_names, map_out=map_out
        )
    except KeyFileError as exc:
        raise RedactError(str(exc)) from exc
    problems = len(result.problems) + len(result.emptied)
    sys.stderr.write(
        f"redacted {result.members + 1} files ({result.captures} captures, "
        f"{result.packets} packets) into {output} in {result.seconds:.1f} s"
        + (f"; {problems} files could not be read and were emptied or cut" if problems else "")
        + "\n"
    )
