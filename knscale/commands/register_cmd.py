"""`knscale register` / `knscale unregister`: the two webhook configurations.

`register` prints the MutatingWebhookConfiguration and ValidatingWebhookConfiguration as YAML,
or creates/replaces them with `--apply`. In-cluster installs do not need it (config/ ships
them and the server fills in the caBundle); it is for local runs and e2e
(`--url https://127.0.0.1:8443 --ca-file .knscale/certs/ca.crt`) and for re-registering.
`unregister` deletes both.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from webhook.registration import DEFAULT_NAMESPACE, DEFAULT_SERVICE


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "register",
        help="print or apply the webhook configurations (caBundle filled in)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    target = p.add_mutually_exclusive_group()
    target.add_argument("--url", help="base URL the API server calls, e.g. https://127.0.0.1:8443")
    target.add_argument("--service", help=f"in-cluster Service name (default {DEFAULT_SERVICE})")
    p.add_argument(
        "--namespace",
        default=DEFAULT_NAMESPACE,
        help=f"knscale's namespace: the Service's, and excluded from admission (default {DEFAULT_NAMESPACE})",
    )
    p.add_argument("--ca-file", help="PEM CA certificate(s) that signed the serving certificate")
    p.add_argument("--apply", action="store_true", help="create or replace them in the cluster")
    p.add_argument(
        "--mutate-templates",
        action="store_true",
        help="also register template mode: Deployments, StatefulSets and Knative Services/"
        "Configurations get the injection in their pod template (needs injection.mutate_templates: "
        "true in the server's settings; docs/annotations.md)",
    )
    _cluster_flags(p)
    p.set_defaults(func=run_register)

    u: argparse.ArgumentParser = subparsers.add_parser(
        "unregister", help="delete both webhook configurations from the cluster"
    )
    _cluster_flags(u)
    u.set_defaults(func=run_unregister)


def _cluster_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kubeconfig", help="kubeconfig file (default $KUBECONFIG or ~/.kube/config)")
    p.add_argument("--context", help="kubeconfig context")


def run_register(args: argparse.Namespace) -> int:
    import yaml

    from certs.pki import CertError, ca_bundle
    from webhook.registration import RegistrationError, ServiceTarget, Target, UrlTarget, render_all

    target: Target
    try:
        if args.url:
            target = UrlTarget(args.url)
        else:
            target = ServiceTarget(args.service or DEFAULT_SERVICE, args.namespace)
    except RegistrationError as exc:
        print(f"knscale register: --url: {exc}", file=sys.stderr)
        return 2
    bundle: str | None = None
    if args.ca_file:
        try:
            bundle = ca_bundle(Path(args.ca_file).read_bytes())
        except OSError as exc:
            print(f"knscale register: --ca-file {args.ca_file}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        except CertError as exc:
            print(f"knscale register: --ca-file {args.ca_file}: {exc}", file=sys.stderr)
            return 2
    elif args.url:
        print(
            "knscale register: --url needs --ca-file (the API server must trust the server's CA), "
            "e.g. --ca-file .knscale/certs/ca.crt",
            file=sys.stderr,
        )
        return 2
    objects = render_all(
        target, own_namespace=args.namespace, ca_bundle=bundle, mutate_templates=args.mutate_templates
    )
    if not args.apply:
        sys.stdout.write(yaml.safe_dump_all(objects, sort_keys=False, width=1000))
        return 0

    from kubeapi.apply import apply
    from kubeapi.client import SMALL_OBJECTS_MAX_BYTES, KubernetesApi
    from kubeapi.errors import ApiError
    from webhook.registration import keep_live_ca_bundle

    try:
        api = KubernetesApi.from_kubeconfig(
            args.kubeconfig, args.context, request_timeout=15.0, max_body_bytes=SMALL_OBJECTS_MAX_BYTES
        )
        for obj in objects:
            # Without --ca-file, keep the caBundle the running server already put there.
            outcome = apply(api, obj, keep=None if bundle else keep_live_ca_bundle)
            print(f"{obj['kind']}/{obj['metadata']['name']} {outcome}")
    except ApiError as exc:
        print(f"knscale register --apply: {exc}", file=sys.stderr)
        return 1
    return 0


def run_unregister(args: argparse.Namespace) -> int:
    from kubeapi.client import SMALL_OBJECTS_MAX_BYTES, KubernetesApi
    from kubeapi.errors import ApiError
    from kubeapi.resources import BY_KIND
    from webhook.registration import configuration_names

    try:
        api = KubernetesApi.from_kubeconfig(
            args.kubeconfig, args.context, request_timeout=15.0, max_body_bytes=SMALL_OBJECTS_MAX_BYTES
        )
        for kind, name in configuration_names():
            gone = api.delete(BY_KIND[kind], None, name)
            print(f"{kind}/{name} {'deleted' if gone else 'not found'}")
    except ApiError as exc:
        print(f"knscale unregister: {exc}", file=sys.stderr)
        return 1
    return 0
