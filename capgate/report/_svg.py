"""Hand-written inline SVG: scales, nice ticks and a small canvas that escapes every string.

The report's figures are plain SVG strings embedded in the HTML (no images, no scripts, no
fonts to fetch). Every figure carries ``role="img"``, an ``aria-label`` and a ``<title>`` so a
screen reader and a hover tooltip both name it. Text passed to the canvas is XML-escaped here,
once, so figure code can pass user strings (backbone names, set names) as they are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

__all__ = ["LinearScale", "LogScale", "Canvas", "Box", "draw_axes", "legend", "shape_mark", "nice_ticks", "FONT"]

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values (1, 2, 5 x 10^k steps) covering ``[lo, hi]``."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        return [lo]
    raw = (hi - lo) / max(1, n)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    v = first
    while v <= hi + step * 1e-9:
        ticks.append(round(v, 12) + 0.0)
        v += step
    return ticks


@dataclass(frozen=True)
class LinearScale:
    """Maps data values in ``domain`` to pixel positions in ``range``."""

    domain: tuple[float, float]
    range: tuple[float, float]

    def __call__(self, v: float) -> float:
        d0, d1 = self.domain
        r0, r1 = self.range
        if d1 == d0:
            return (r0 + r1) / 2
        return r0 + (v - d0) / (d1 - d0) * (r1 - r0)

    def ticks(self, n: int = 5) -> list[float]:
        """Round tick values inside the domain."""
        lo, hi = sorted(self.domain)
        return [t for t in nice_ticks(lo, hi, n) if lo - 1e-12 <= t <= hi + 1e-12]

    @staticmethod
    def padded(lo: float, hi: float, rng: tuple[float, float], pad: float = 0.06) -> "LinearScale":
        """A scale over ``[lo, hi]`` widened by ``pad`` of its span on each side."""
        span = hi - lo if hi > lo else (abs(hi) or 1.0)
        return LinearScale((lo - pad * span, hi + pad * span), rng)


@dataclass(frozen=True)
class LogScale:
    """Base-10 log scale for strictly positive values (parameter counts, MACs, latency)."""

    domain: tuple[float, float]
    range: tuple[float, float]

    def __call__(self, v: float) -> float:
        d0, d1 = (math.log10(x) for x in self.domain)
        r0, r1 = self.range
        if d1 == d0:
            return (r0 + r1) / 2
        return r0 + (math.log10(max(v, 1e-300)) - d0) / (d1 - d0) * (r1 - r0)

    def ticks(self, n: int = 5) -> list[float]:
        """1-2-5 ticks per decade inside the domain, thinned to about ``n`` (at least two)."""
        lo, hi = sorted(self.domain)
        out = []
        for k in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
            for m in (1, 2, 5):
                v = m * 10.0**k
                if lo * (1 - 1e-9) <= v <= hi * (1 + 1e-9):
                    out.append(v)
        if len(out) > n:
            decades = [v for v in out if math.isclose(v / 10 ** math.floor(math.log10(v)), 1.0)]
            out = decades if len(decades) >= 2 else out[:: math.ceil(len(out) / n)]
        if len(out) < 2:
            out = [lo, hi]
        return out

    @staticmethod
    def padded(lo: float, hi: float, rng: tuple[float, float], pad: float = 0.08) -> "LogScale":
        """A log scale over ``[lo, hi]`` widened by ``pad`` decades-fraction on each side."""
        lo, hi = max(lo, 1e-300), max(hi, 1e-300)
        if hi <= lo:
            lo, hi = lo / 2, hi * 2
        span = math.log10(hi) - math.log10(lo)
        f = 10 ** (pad * span)
        return LogScale((lo / f, hi * f), rng)


def _num(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".") if math.isfinite(v) else "0"


def _attrs(attrs: dict[str, object]) -> str:
    parts = []
    for k, v in attrs.items():
        if v is None:
            continue
        name = k.rstrip("_").replace("_", "-")
        parts.append(f"{name}={quoteattr(_num(v) if isinstance(v, float) else str(v))}")
    return " ".join(parts)


class Canvas:
    """Accumulates SVG elements; :meth:`to_svg` returns one accessible ``<svg>`` string.

    ``title`` becomes the figure's accessible name (``aria-label`` and ``<title>``) and ``desc``
    its longer description (``<desc>``). Coordinates are in pixels of the ``viewBox``.
    """

    def __init__(self, width: int, height: int, title: str, desc: str = "", css_class: str = "fig") -> None:
        self.width, self.height = int(width), int(height)
        self.title, self.desc, self.css_class = title, desc, css_class
        self._parts: list[str] = []

    def _el(self, tag: str, attrs: dict[str, object], text: str | None = None, tip: str | None = None) -> None:
        inner = escape(text) if text is not None else ""
        if tip:
            inner += f"<title>{escape(tip)}</title>"
        a = _attrs(attrs)
        self._parts.append(f"<{tag} {a}>{inner}</{tag}>" if inner else f"<{tag} {a}/>")

    def line(self, x1: float, y1: float, x2: float, y2: float, **attrs: object) -> None:
        """A straight line; ``attrs`` are SVG attributes (``stroke_width`` -> ``stroke-width``)."""
        self._el("line", {"x1": x1, "y1": y1, "x2": x2, "y2": y2, "stroke": "#333", **attrs})

    def rect(self, x: float, y: float, w: float, h: float, tip: str | None = None, **attrs: object) -> None:
        """A rectangle (negative sizes are normalised); ``tip`` adds a hover tooltip."""
        if w < 0:
            x, w = x + w, -w
        if h < 0:
            y, h = y + h, -h
        self._el("rect", {"x": x, "y": y, "width": w, "height": h, **attrs}, tip=tip)

    def circle(self, cx: float, cy: float, r: float, tip: str | None = None, **attrs: object) -> None:
        """A circle marker; ``tip`` adds a hover tooltip."""
        self._el("circle", {"cx": cx, "cy": cy, "r": r, **attrs}, tip=tip)

    def polyline(self, points: list[tuple[float, float]], **attrs: object) -> None:
        """An open path through ``points`` (nothing is drawn for fewer than two)."""
        if len(points) < 2:
            return
        pts = " ".join(f"{_num(x)},{_num(y)}" for x, y in points)
        self._el("polyline", {"points": pts, "fill": "none", **attrs})

    def polygon(self, points: list[tuple[float, float]], tip: str | None = None, **attrs: object) -> None:
        """A closed filled shape (the noise band, a marker); ``tip`` adds a hover tooltip."""
        if len(points) < 3:
            return
        pts = " ".join(f"{_num(x)},{_num(y)}" for x, y in points)
        self._el("polygon", {"points": pts, **attrs}, tip=tip)

    def text(self, x: float, y: float, s: str, size: float = 11, anchor: str = "start", **attrs: object) -> None:
        """Escaped text at (x, y); ``anchor`` is ``start``, ``middle`` or ``end``."""
        self._el("text", {"x": x, "y": y, "font-size": size, "text-anchor": anchor, "fill": "#222", **attrs}, str(s))

    def raw_group(self, open_attrs: dict[str, object]) -> None:
        """Open a ``<g>``; close it with :meth:`end_group`."""
        self._parts.append(f"<g {_attrs(open_attrs)}>")

    def end_group(self) -> None:
        """Close the group opened last."""
        self._parts.append("</g>")

    def to_svg(self) -> str:
        """The finished ``<svg>`` element, scalable (``viewBox``) and accessible."""
        head = (
            f'<svg class={quoteattr(self.css_class)} role="img" '
            f'aria-label={quoteattr(self.title)} viewBox="0 0 {self.width} {self.height}" '
            f'width="{self.width}" height="{self.height}" font-family={quoteattr(FONT)}>'
            f"<title>{escape(self.title)}</title>"
        )
        if self.desc:
            head += f"<desc>{escape(self.desc)}</desc>"
        return head + "".join(self._parts) + "</svg>"


@dataclass(frozen=True)
class Box:
    """The plotting area inside a canvas, in pixels."""

    left: float
    top: float
    right: float
    bottom: float


def draw_axes(
    c: Canvas,
    x: LinearScale | LogScale | None,
    y: LinearScale | LogScale | None,
    box: Box,
    *,
    xlabel: str = "",
    ylabel: str = "",
    xfmt=str,
    yfmt=str,
    nx: int = 6,
    ny: int = 5,
) -> None:
    """Frame, grid lines, tick labels and axis titles for ``box``; ``None`` skips an axis."""
    c.rect(box.left, box.top, box.right - box.left, box.bottom - box.top, fill="#fbfbfc", stroke="#d0d4da")
    if x is not None:
        for t in x.ticks(nx):
            px = x(t)
            c.line(px, box.top, px, box.bottom, stroke="#e6e8eb")
            c.text(px, box.bottom + 14, xfmt(t), size=10, anchor="middle", fill="#555")
        if xlabel:
            c.text((box.left + box.right) / 2, box.bottom + 32, xlabel, size=11, anchor="middle", fill="#333")
    if y is not None:
        for t in y.ticks(ny):
            py = y(t)
            c.line(box.left, py, box.right, py, stroke="#e6e8eb")
            c.text(box.left - 6, py + 3.5, yfmt(t), size=10, anchor="end", fill="#555")
        if ylabel:
            cy = (box.top + box.bottom) / 2
            c.text(14, cy, ylabel, size=11, anchor="middle", fill="#333", transform=f"rotate(-90 14 {cy:.1f})")


def shape_mark(c: Canvas, shape: str, x: float, y: float, r: float, tip: str | None = None, **attrs: object) -> None:
    """A marker of ``shape`` (``dot``, ``square``, ``diamond``, ``triangle``) centred on (x, y)."""
    if shape == "square":
        c.rect(x - r * 0.9, y - r * 0.9, 1.8 * r, 1.8 * r, tip=tip, **attrs)
    elif shape == "diamond":
        c.polygon([(x, y - 1.2 * r), (x + 1.2 * r, y), (x, y + 1.2 * r), (x - 1.2 * r, y)], tip=tip, **attrs)
    elif shape == "triangle":
        c.polygon([(x, y - 1.2 * r), (x + 1.1 * r, y + 0.8 * r), (x - 1.1 * r, y + 0.8 * r)], tip=tip, **attrs)
    else:
        c.circle(x, y, r, tip=tip, **attrs)


def legend(c: Canvas, x: float, y: float, items: list[tuple[str, str, str]], *, max_width: float) -> float:
    """Horizontal legend of ``(label, colour, marker)`` items (marker ``dot``, ``ring``, ``band``,
    ``line``), wrapped at ``max_width``; returns the y below it."""
    cx, cy = x, y
    for label, colour, marker in items:
        w = 22 + 6.2 * len(label)
        if cx + w > x + max_width and cx > x:
            cx, cy = x, cy + 16
        shape, _, stroke = marker.partition("+")
        if stroke:  # "<shape>+line" / "<shape>+dash": a line style with a marker on it
            c.line(cx, cy - 3, cx + 14, cy - 3, stroke=colour, stroke_width=1.4,
                   stroke_dasharray="4 2" if stroke == "dash" else None)
            shape_mark(c, shape, cx + 7, cy - 3, 3.4, fill=colour, stroke="#fff", stroke_width=0.6)
        elif marker in ("square", "diamond", "triangle"):
            shape_mark(c, marker, cx + 7, cy - 3, 4, fill=colour, stroke=colour)
        elif marker == "seed":
            for dx in (3, 7, 11):
                c.circle(cx + dx, cy - 3 + (dx - 7) * 0.3, 1.9, fill=colour, fill_opacity=0.6, stroke="none")
        elif marker == "errorbar":
            c.line(cx + 7, cy - 9, cx + 7, cy + 3, stroke=colour, stroke_width=1.3)
            c.line(cx + 4.5, cy - 9, cx + 9.5, cy - 9, stroke=colour, stroke_width=1.1)
            c.line(cx + 4.5, cy + 3, cx + 9.5, cy + 3, stroke=colour, stroke_width=1.1)
            c.circle(cx + 7, cy - 3, 3.4, fill=colour, stroke="#fff", stroke_width=0.6)
        elif marker == "band":
            c.rect(cx, cy - 8, 14, 10, fill=colour, stroke="none")
        elif marker == "line":
            c.line(cx, cy - 3, cx + 14, cy - 3, stroke=colour, stroke_width=2)
        elif marker == "dash":
            c.line(cx, cy - 3, cx + 14, cy - 3, stroke=colour, stroke_width=1.2, stroke_dasharray="4 3")
        elif marker == "ring":
            c.circle(cx + 7, cy - 3, 4, fill="#fff", stroke=colour, stroke_width=1.8)
        else:
            c.circle(cx + 7, cy - 3, 4, fill=colour, stroke=colour)
        c.text(cx + 18, cy + 1, label, size=10, fill="#333")
        cx += w
    return cy + 16
