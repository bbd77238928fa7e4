"""Geometry of a report figure: every text (its width estimated from its length), line, rectangle,
circle and polygon must lie inside the SVG's viewBox. Used by the figure tests."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

#: Average advance of one character as a fraction of the font size: generous for a sans-serif
#: (Arial/Helvetica lowercase and digits average about 0.5-0.56 em), so a pass means no clipping.
CHAR_EM = 0.6
_NS = "{http://www.w3.org/2000/svg}"


def figures(html: str) -> list[str]:
    """The inline ``<svg>`` elements of a report page."""
    return re.findall(r"<svg\b.*?</svg>", html, flags=re.S)


def out_of_frame(svg: str, slack: float = 0.5) -> list[str]:
    """What lies outside the viewBox, one line per element ('' list when everything fits)."""
    root = ET.fromstring(svg if "xmlns" in svg else svg.replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1))
    _, _, w, h = (float(v) for v in root.get("viewBox").split())
    bad = []

    def check(tag: str, what: str, x0: float, x1: float, y0: float, y1: float) -> None:
        if x0 < -slack or x1 > w + slack or y0 < -slack or y1 > h + slack:
            bad.append(f"{tag} {what!r}: x {x0:.1f}..{x1:.1f}, y {y0:.1f}..{y1:.1f} outside 0..{w:g} x 0..{h:g}")

    for el in root.iter():
        tag = el.tag.replace(_NS, "")
        f = lambda k: float(el.get(k, 0))  # noqa: E731
        if tag == "text":
            text = "".join(el.itertext()).strip()
            size, x, y = float(el.get("font-size", 11)), f("x"), f("y")
            tw = CHAR_EM * size * len(text)
            anchor = el.get("text-anchor", "start")
            x0 = x - tw if anchor == "end" else x - tw / 2 if anchor == "middle" else x
            if el.get("transform"):  # rotated axis labels: check the anchor point only
                check(tag, text, x, x, y, y)
            else:
                check(tag, text, x0, x0 + tw, y - size * 0.8, y + size * 0.25)
        elif tag == "line":
            xs, ys = (f("x1"), f("x2")), (f("y1"), f("y2"))
            check(tag, "", min(xs), max(xs), min(ys), max(ys))
        elif tag == "rect":
            check(tag, "", f("x"), f("x") + f("width"), f("y"), f("y") + f("height"))
        elif tag == "circle":
            r = f("r")
            check(tag, "", f("cx") - r, f("cx") + r, f("cy") - r, f("cy") + r)
        elif tag in ("polygon", "polyline"):
            pts = [tuple(map(float, p.split(","))) for p in el.get("points", "").split()]
            if pts:
                check(tag, "", min(p[0] for p in pts), max(p[0] for p in pts), min(p[1] for p in pts),
                      max(p[1] for p in pts))
    return bad
