"""`knscale lint -o junit`: JUnit XML, as GitLab (`artifacts:reports:junit`) and Jenkins read it.

One test suite, one test case per file read (named after the file), and per finding at or above
warning a `<failure>` (errors: type `error`, warnings: type `warning`) carrying the rule id and
the compiler-style line; info findings go to the case's `<system-out>`. A file without findings
is a passing case, so the report shows what was checked, not only what failed. GitLab shows each
failure's message and text in the merge request's test report.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict

from knscale.commands._manifests import text_line
from translator.core.findings import Severity
from translator.lint import Located


def report(located: list[Located], files: list[str]) -> str:
    """The XML document; `located` carries the project's severities already (LintConfig.apply)."""
    by_file: dict[str, list[Located]] = defaultdict(list)
    for item in located:
        by_file[item.source].append(item)
    names = list(dict.fromkeys([*files, *by_file]))  # read errors have findings but no document
    suite = ET.Element("testsuite", name="knscale lint")
    failures = errors = 0
    for name in names:
        case = ET.SubElement(suite, "testcase", classname="knscale.lint", name=name)
        notes: list[str] = []
        for item in by_file.get(name, []):
            f = item.finding
            line = text_line(item)
            if f.severity is Severity.INFO:
                notes.append(line)
                continue
            tag = "failure"
            if f.rule_id.startswith("KNS9"):
                tag = "error"  # the file could not be judged at all
                errors += 1
            else:
                failures += 1
            node = ET.SubElement(case, tag, message=f"{f.rule_id} {f.message}", type=str(f.severity))
            node.text = line
        if notes:
            ET.SubElement(case, "system-out").text = "\n".join(notes)
    suite.set("tests", str(len(names)))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suites = ET.Element("testsuites", name="knscale", tests=str(len(names)))
    suites.set("failures", str(failures))
    suites.set("errors", str(errors))
    suites.append(suite)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
