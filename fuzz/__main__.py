"""`python -m fuzz [admission|lint|all] [ARGS…]` — run one campaign, or both with their defaults."""

from __future__ import annotations

import importlib
import sys

CAMPAIGNS = ("admission", "lint")


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    names = CAMPAIGNS if name == "all" else (name,)
    if any(n not in CAMPAIGNS for n in names):
        print(f"unknown campaign {name!r}; choose from {', '.join(CAMPAIGNS)} or all", file=sys.stderr)
        return 2
    worst = 0
    for n in names:
        code: int = importlib.import_module(f"fuzz.{n}").main(rest if name != "all" else [])
        worst = max(worst, code)
    return worst


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
