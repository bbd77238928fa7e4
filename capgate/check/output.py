"""How ``capgate check`` shows its result: the readable diff table and JUnit XML."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

from capgate.store.atomic import atomic_write_bytes
from capgate.check.rules import CheckResult

__all__ = ["format_table", "write_junit", "wrap_key", "RULE_POINTER"]


#: The one line printed instead of the rule unless asked for it (the rule is also in the JUnit XML).
RULE_POINTER = "rule: how each tolerance is computed: rerun with --explain (also in the JUnit XML's 'rule' property)"


def wrap_key(key: str, width: int) -> list[str]:
    """``key`` in pieces of at most ``width`` characters, broken after a separator (``|``, ``/``,
    ``,``, ``=``, ``@``, space) where one falls in the piece; nothing of the key is dropped."""
    pieces, rest = [], key
    while len(rest) > width:
        cut = max(rest.rfind(sep, 0, width) for sep in "|/,=@ ") + 1
        cut = cut if cut > 0 else width
        pieces.append(rest[:cut])
        rest = rest[cut:]
    return [*pieces, rest]


def format_table(result: CheckResult, *, only_problems: bool = False, max_key: int = 72,
                 explain: bool = False) -> str:
    """The readable diff: one line per comparison (failures first; a key longer than ``max_key``
    continues on the next lines, whole), a one-line verdict, then the rule when ``explain`` is set
    (else a one-line pointer to ``--explain``) and the notes."""
    rows = [r for r in result.rows if not (only_problems and r.status == "pass")]
    head = ("status", "check", "key", "baseline", "current", "tolerance", "note")
    body = []
    for r in rows:
        first, *more = wrap_key(r.key, max_key)
        body.append((r.status.upper(), r.check, first, r.baseline, r.current, r.tolerance, r.message))
        body += [("", "", piece, "", "", "", "") for piece in more]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
    widths[-1] = 0  # the note is last and left ragged
    fmt = lambda cols: "  ".join(c.ljust(w) for c, w in zip(cols, widths)).rstrip()  # noqa: E731
    lines = [fmt(head), fmt(tuple("-" * max(w, len(h)) for w, h in zip(widths, head)))] + [fmt(b) for b in body]
    n_pass = sum(r.status == "pass" for r in result.rows)
    if only_problems and n_pass:
        lines.append(f"({n_pass} passing comparisons not shown)")
    verdict = "PASS" if result.passed else "FAIL"
    lines.append(f"check {verdict}: {n_pass} passed, {len(result.warnings)} warnings, {len(result.failures)} failures")
    lines.append(f"rule: {result.rule}" if explain else RULE_POINTER)
    lines.extend(f"note: {n}" for n in result.notes)
    return "\n".join(lines)


def write_junit(result: CheckResult, path: str | os.PathLike) -> Path:
    """Write JUnit XML: one ``testcase`` per comparison, ``failure`` for regressions, warnings as
    ``system-out`` on passing testcases. Returns the path written."""
    p = Path(path)
    suites = ET.Element("testsuites", name="capgate check", tests=str(len(result.rows)),
                        failures=str(len(result.failures)), errors="0")
    suite = ET.SubElement(suites, "testsuite", name="capgate check", tests=str(len(result.rows)),
                          failures=str(len(result.failures)), errors="0", skipped="0", time="0")
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="rule", value=result.rule)
    ET.SubElement(props, "property", name="warnings", value=str(len(result.warnings)))
    for r in result.rows:
        case = ET.SubElement(suite, "testcase", classname=f"capgate.check.{r.check}", name=r.key, time="0")
        detail = f"baseline: {r.baseline}\ncurrent: {r.current}\ntolerance: {r.tolerance}\n{r.message}".strip()
        if r.status == "fail":
            fail = ET.SubElement(case, "failure", message=r.message or "regression", type="regression")
            fail.text = detail
        elif r.status == "warn":
            ET.SubElement(case, "system-out").text = f"WARNING: {r.message}\n{detail}"
    atomic_write_bytes(p, ET.tostring(suites, encoding="utf-8", xml_declaration=True))
    return p
