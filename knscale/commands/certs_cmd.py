"""`knscale certs`: make (or renew) a CA and a serving certificate for the webhook.

Writes `ca.crt`, `ca.key` (0600, needed to renew the leaf under the same CA), `tls.crt`,
`tls.key` (0600) and `caBundle` (base64 of ca.crt, the value for `clientConfig.caBundle`).
Running it again keeps a valid bundle, renews an expiring or insufficient leaf under the same
CA (so a registered caBundle stays valid), and makes a new CA only with `--force`.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from webhook.registration import DEFAULT_NAMESPACE, DEFAULT_SERVICE


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "certs",
        help="create a CA and a serving certificate (and the caBundle) in a directory",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (created if absent)")
    p.add_argument(
        "--service", default=DEFAULT_SERVICE, help=f"webhook Service name (default {DEFAULT_SERVICE})"
    )
    p.add_argument(
        "--namespace", default=DEFAULT_NAMESPACE, help=f"its namespace (default {DEFAULT_NAMESPACE})"
    )
    p.add_argument("--dns", action="append", default=[], metavar="NAME", help="extra DNS SAN (repeatable)")
    p.add_argument("--ip", action="append", default=[], metavar="IP", help="extra IP SAN (repeatable)")
    p.add_argument(
        "--no-local",
        dest="local",
        action="store_false",
        help="leave out localhost and 127.0.0.1 (included by default for local runs)",
    )
    p.add_argument("--days", type=int, default=90, help="validity of the serving certificate (default 90)")
    p.add_argument("--force", action="store_true", help="make a new CA even if the existing one is valid")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from certs.files import CertPaths, ensure_local_certs
    from certs.pki import CertError, subject_names

    if not 1 <= args.days <= 825:
        print("knscale certs: --days must be within 1..825", file=sys.stderr)
        return 2
    try:
        names = subject_names(
            service=args.service,
            namespace=args.namespace,
            dns_names=args.dns,
            ip_addresses=args.ip,
            local=args.local,
        )
    except ValueError as exc:
        print(f"knscale certs: --ip: {exc}", file=sys.stderr)
        return 2
    paths = CertPaths(Path(args.out))
    validity = timedelta(days=args.days)
    try:
        result = ensure_local_certs(
            paths,
            names,
            datetime.now(UTC),
            force=args.force,
            leaf_validity=validity,
            renew_before=min(validity / 3, timedelta(days=30)),
        )
    except (CertError, OSError) as exc:
        print(f"knscale certs: {exc}", file=sys.stderr)
        return 1
    why = f" ({'; '.join(result.reasons)})" if result.reasons else ""
    print(f"{result.action} certificates in {paths.directory}{why}")
    print(f"  CA certificate:  {paths.ca_cert}")
    print(f"  serving cert:    {paths.cert}  (expires {result.assessment.leaf_not_after:%Y-%m-%d})")
    print(f"  serving key:     {paths.key}")
    print(f"  caBundle:        {paths.ca_bundle}")
    print(f"  names:           {', '.join(names.dns_names + names.ip_addresses)}")
    return 0
