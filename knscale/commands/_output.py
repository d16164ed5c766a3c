"""The one output flag of every command: `-o/--output FORMAT`, as kubectl spells it.

`-f` stays what kubectl users read it as (a file); `lint` took `-f/--format FORMAT` before, so
`--format` remains an alias of `-o`, and `lint -f FORMAT` with a format name that is not an
existing file is still taken as the format (with a deprecation note on stderr).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def add_output_argument(
    p: argparse.ArgumentParser, choices: Sequence[str], *, default: str, legacy_format: bool = False
) -> None:
    flags = ["-o", "--output"] + (["--format"] if legacy_format else [])
    p.add_argument(
        *flags,
        dest="output",
        metavar="FORMAT",
        choices=tuple(choices),
        default=default,
        help=f"output format: {', '.join(choices)} (default: {default})"
        + ("; --format is the old spelling" if legacy_format else ""),
    )


def take_legacy_format_from_files(args: argparse.Namespace, prog: str, choices: Sequence[str]) -> None:
    """`knscale lint -f json x.yaml` meant `-o json` before `-f` meant a file: honour it once more.

    Only a value that names a format and no existing file is taken; a file called `json` is a file.
    """
    kept: list[str] = []
    for value in args.filename or []:
        if value in choices and not Path(value).exists():
            print(f"{prog}: warning: -f {value} is the old spelling of -o {value}", file=sys.stderr)
            args.output = value
        else:
            kept.append(value)
    args.filename = kept
