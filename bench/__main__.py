"""`python -m bench [lint|webhook|reconciler|autoscaling|coldstart|all] [ARGS…]` — run one benchmark, or all.

Each benchmark is a module here with `main(argv) -> int`; its own options follow its name
(`python -m bench lint --manifests 5000`). `all` runs every benchmark with its defaults and
exits with the worst exit code. Figures go into BENCHMARKS.md by hand; nothing here is asserted
by the unit tests.
"""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = ("lint", "webhook", "reconciler", "autoscaling", "coldstart")
ON_DEMAND = ("soak",)  # ten minutes by default: `make soak`, not part of `all`


def run(name: str, argv: list[str]) -> int:
    module = importlib.import_module(f"bench.{name}")
    code: int = module.main(argv)
    return code


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name == "all":
        worst = 0
        for each in BENCHMARKS:
            print(f"== bench {each} ==", flush=True)
            worst = max(worst, run(each, []))
        return worst
    if name not in BENCHMARKS + ON_DEMAND:
        print(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)} or all", file=sys.stderr)
        return 2
    return run(name, rest)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
