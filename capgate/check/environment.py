"""Where a summary was made: ``check`` prints the baseline's and the current summary's ``environment``
(written by :func:`capgate.analysis.summary.build_summary`) when they differ."""

from __future__ import annotations

from typing import Any

__all__ = ["ENVIRONMENT_FIELDS", "environment_notes"]

#: The fields of a summary's ``environment`` block that ``check`` prints when they differ.
ENVIRONMENT_FIELDS = ("cpu", "torch", "timm", "git_sha", "capgate")


def environment_notes(baseline: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Both summaries' ``environment`` when they differ (numbers made elsewhere differ in the last digits,
    and retrained stages move pretrained cells); a baseline without one is named."""
    b, c = baseline.get("environment"), current.get("environment")

    def words(e: dict) -> str:
        return ", ".join(f"{k} {e.get(k) if e.get(k) is not None else '?'}" for k in ENVIRONMENT_FIELDS)

    if not isinstance(b, dict):
        return ["the baseline records no environment (made before capgate wrote one); current: " + words(c)] \
            if isinstance(c, dict) else []
    if not isinstance(c, dict) or all(b.get(k) == c.get(k) for k in ENVIRONMENT_FIELDS):
        return []
    diff = [k for k in ENVIRONMENT_FIELDS if b.get(k) != c.get(k)]
    return [f"made in another environment ({', '.join(diff)} differ)", f"baseline environment: {words(b)}",
            f"current environment: {words(c)}"]
