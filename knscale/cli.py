"""`knscale` command line: one argparse parser, one module per subcommand.

Exit codes follow the lint convention everywhere: 0 success, 1 findings/failure the user
asked us to detect, 2 usage error or unreadable input (reported without a traceback).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from knscale import __version__
from knscale.settings import SettingsError

# Each module registers one subcommand. Command modules keep their heavy imports (FastAPI,
# uvicorn, the kubernetes client) inside the command function, so `knscale lint` stays fast.
COMMAND_MODULES: tuple[str, ...] = (
    "knscale.commands.serve_cmd",
    "knscale.commands.certs_cmd",
    "knscale.commands.register_cmd",
    "knscale.commands.reconcile_cmd",
    "knscale.commands.lint_cmd",
    "knscale.commands.translate_cmd",
    "knscale.commands.inject_cmd",
    "knscale.commands.rules_cmd",
    "knscale.commands.completion_cmd",
    "knscale.commands.simulate_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="knscale",
        description="Knative-style serving of ML models: model injection and autoscaling from annotations.",
    )
    parser.add_argument("--version", action="version", version=f"knscale {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except SettingsError as exc:
        print(f"knscale: invalid configuration:\n{exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return _closed_pipe()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return _closed_pipe()
    return code


def _closed_pipe() -> int:
    """`knscale lint -o json . | head`: the reader left; end quietly, as `cat` does.

    Python would print a BrokenPipeError traceback when it flushes stdout at exit; pointing
    stdout at /dev/null first keeps that flush quiet. 141 = 128 + SIGPIPE, what a shell reports
    for a tool killed by the signal.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 141


if __name__ == "__main__":
    raise SystemExit(main())
