"""The Go text/template subset autoscaler-keda evaluates in a Prometheus query."""

from __future__ import annotations

import re

from translator.core.values import ParseError

_ACTION = re.compile(r"\{\{(-\s)?\s*(.*?)\s*(\s-)?\}\}", re.DOTALL)


def render_query(template: str, revision: str) -> str:
    """Go text/template as autoscaler-keda uses it: only `{{.revisionName}}` (and comments) exist.

    Raises ParseError for anything else, which Go would either reject or print as `<no value>`.
    """
    out: list[str] = []
    pos = 0
    for m in _ACTION.finditer(template):
        text = template[pos : m.start()]
        if m.group(1):
            text = text.rstrip()
        out.append(text)
        body = m.group(2)
        if body == ".revisionName":
            out.append(revision)
        elif not (body.startswith("/*") and body.endswith("*/")):
            raise ParseError(
                f"unsupported template action {{{{{body}}}}}; only {{{{.revisionName}}}} is available"
            )
        pos = m.end()
        if m.group(3):
            rest = template[pos:]
            pos += len(rest) - len(rest.lstrip())
    tail = template[pos:]
    if "{{" in tail:
        raise ParseError("unclosed template action '{{'")
    out.append(tail)
    return "".join(out)
