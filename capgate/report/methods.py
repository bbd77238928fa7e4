"""Methods text, model diagnostics and provenance, generated from what the analysis recorded.

The methods section is written from ``Analysis.methods``, ``Analysis.models`` and the resolved
plan, never from boilerplate: if the analysis used Holm's correction and t intervals, the text
says so because those are the values it recorded. Facts this module has no sentence for are
still listed, verbatim, so nothing the analysis did goes unreported.
"""

from __future__ import annotations

import json
import math
from typing import Any

from capgate.analysis.plan import Plan
from capgate.analysis.verdicts import verdict_rule
from capgate.report.units import fmt_float, fmt_p, fmt_pp, is_missing

__all__ = ["methods_paragraphs", "design_text", "methods_facts", "model_cards", "provenance_rows", "plain"]

_CORRECTIONS = {"holm": "Holm's step-down correction", "bh": "the Benjamini–Hochberg false-discovery-rate correction",
                "none": "no multiple-comparison correction"}
_INTERVALS = {"t": "t-based intervals on the moderated degrees of freedom (small-sample honest, "
                   "wider than z intervals with a handful of seeds)"}


def plain(v: Any, limit: int = 12) -> str:
    """A JSON-able value as short readable text (lists truncated with a count of the rest)."""
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return fmt_float(v, 4)
    if isinstance(v, (list, tuple)):
        items = [plain(x) for x in v[:limit]]
        more = f" (+{len(v) - limit} more)" if len(v) > limit else ""
        return ", ".join(items) + more if items else "none"
    if isinstance(v, dict):
        return json.dumps(v, sort_keys=True, default=str)
    return str(v)


def _margin_words(plan: Plan) -> str:
    m = plan.margin

    def one(x: Any) -> str:
        return "the pooled run-to-run SD of the study and task" if x == "pooled_sd" else f"±{fmt_pp(x, sign=False)}"

    if isinstance(m, dict):
        return "; ".join(f"{t}: {one(x)}" for t, x in sorted(m.items()))
    return one(m)


def _margin_text(methods: dict[str, Any], plan: Plan) -> str:
    """The margin per (study, task) as recorded by the analysis (rule, value, family size)."""
    fams = methods.get("families")
    if not isinstance(fams, list) or not fams:
        return _margin_words(plan)
    parts = []
    for v in fams:
        rule = ("estimated from the data (pooled run-to-run SD): it cannot show equivalence with few seeds"
                if v.get("margin_rule") == "pooled_sd" else "fixed, pre-registered")
        parts.append(f"{v.get('study')}/{v.get('task')}: ±{fmt_pp(v.get('margin'), sign=False)} ({rule}; "
                     f"correction family of {plain(v.get('n_contrasts'))} contrasts)")
    return "; ".join(parts) + (f". {methods['margin']}" if isinstance(methods.get("margin"), str) else "")


def design_text(plan: Plan, cells: list[dict[str, Any]], alpha: Any) -> str:
    """Which design the verdicts are valid for, and how many looks each cell had (from its seeds and
    the plan's ``sequential`` design)."""
    from capgate.analysis.plan import sequential_looks

    seq = plan.sequential
    if not seq:
        return ("Design. Fixed: one look at the seeds present; analysing again after adding seeds is a look this "
                "design does not pay for (a plan key 'sequential' declares a group-sequential design).")
    looks = sorted({len(sequential_looks(int(c.get("n_ok") or 0), seq)) for c in cells} - {0})
    seen = (f"{looks[0]}" if len(looks) == 1 else f"{looks[0]} to {looks[-1]}") if looks else "no"
    kind = {"obrien_fleming": "O'Brien–Fleming", "pocock": "Pocock"}.get(seq.spending, seq.spending)
    return (f"Design. Group-sequential: Lan–DeMets alpha spending with {kind}-type boundaries, looks at "
            f"{', '.join(map(str, seq.schedule))} seeds per arm, at most {seq.max_seeds} (information fraction "
            f"= seeds / {seq.max_seeds}); the cells had {seen} look(s) (from their seeds and this schedule). "
            "Each contrast's test and TOST p-values are repeated p-values at its current look, adjusted as above, "
            f"and its interval is the repeated {100 * (1 - float(alpha)):.0f} % confidence interval, valid whatever "
            "the look a study stopped at.")


def methods_paragraphs(methods: dict[str, Any], models: list[dict[str, Any]], plan: Plan,
                       summary: dict[str, Any]) -> list[str]:
    """The methods section as paragraphs of plain text (the template escapes them)."""
    cells = summary.get("cells", [])
    n_ok = sum(int(c.get("n_ok") or 0) for c in cells)
    n_failed = sum(int(c.get("n_failed") or 0) for c in cells)
    n_div = sum(int(c.get("n_diverged") or 0) for c in cells)
    metric = summary.get("metric", {})
    metrics = ", ".join(f"{t}: {m}" for t, m in sorted(metric.items()) if t in summary.get("tasks", metric))
    paras = [
        f"Data. {len(cells)} cells (task × backbone × train set × eval set × initialization) from "
        f"{', '.join(summary.get('studies', [])) or 'the given results'}; {n_ok} successful evaluations enter the "
        f"means, {n_failed} failed and {n_div} diverged evaluations are counted per cell (Data completeness) and "
        f"excluded from the means, never dropped silently. Metric per task — {metrics or 'as recorded'}."
    ]
    alpha = methods.get("alpha", plan.alpha)
    conf = f"{100 * (1 - float(alpha)):.0f} %" if not is_missing(alpha) else "the plan's"
    baseline = methods.get("baseline", plan.baseline)
    interval = methods.get("interval") or _INTERVALS.get(plan.interval, f"{plan.interval} intervals")
    corr = methods.get("correction") or _CORRECTIONS.get(plan.correction, plan.correction)
    gain = methods.get("gain") or "difference of cell means"
    noise = f" Run-to-run noise: {methods['noise']}." if methods.get("noise") else ""
    noise += f" Pairing: {methods['pairing']}." if methods.get("pairing") else ""
    paras.append(
        f"Gains. For every cell, each pretrained initialization is compared with the baseline '{baseline}': "
        f"{gain}, with {conf} intervals — {interval}.{noise} Equivalence margin: {_margin_text(methods, plan)}. "
        f"Multiple comparisons: {corr}, at alpha = {plain(alpha)}."
    )
    rule = methods.get("verdict_rule") or verdict_rule(plan.correction)
    extra = f" Equivalence test: {methods['equivalence']}." if methods.get("equivalence") else ""
    seeds = methods.get("seeds_needed") or f"a power analysis at power {plain(plan.power)}"
    paras.append(f"Verdicts. {rule}.{extra} Seeds needed for an inconclusive contrast: {seeds}.")
    if methods.get("outliers"):
        paras.append(f"Outlier runs. {methods['outliers']}.")
    if methods.get("stages"):
        paras.append(f"Pretraining replicates. {methods['stages']}.")
    paras.append(design_text(plan, cells, alpha))
    if methods.get("random_effects"):
        paras.append(f"Random effects. {methods['random_effects']}.")
    for key, head in (("gate", "Capacity gate"), ("ranking", "Rankings")):
        if methods.get(key):
            paras.append(f"{head}. {methods[key]}.")
    for m in models:
        formula = m.get("formula_statsmodels")
        lme4 = m.get("formula_lme4")
        if not formula:
            continue
        fitter = m.get("fitter", "statsmodels MixedLM")
        text = f"Model '{m.get('name', 'model')}': a linear mixed-effects model ({fitter}"
        text += f", {m['method']}" if m.get("method") else ""
        text += f") with formula {formula}"
        text += f"; in lme4 syntax {lme4}" if lme4 else ""
        groups = m.get("groups")
        text += f"; grouped by {plain(groups)}" if groups else ""
        text += f"; {m['n_obs']} observations." if "n_obs" in m else "."
        if m.get("df_method"):
            text += (" Fixed effects are tested with t on Satterthwaite degrees of freedom, as lmerTest computes them."
                     if str(m["df_method"]).startswith("Satterthwaite") else f" Degrees of freedom: {m['df_method']}.")
        paras.append(text)
    for key in ("text", "paragraphs", "notes"):
        note = methods.get(key)
        if isinstance(note, str) and note:
            paras.append(note)
        elif isinstance(note, list):
            paras.extend(str(x) for x in note if x)
    return paras


def methods_facts(methods: dict[str, Any], plan: Plan) -> list[tuple[str, str]]:
    """Every fact the analysis recorded in ``methods`` plus the resolved plan, as (name, value) rows."""
    rows = [(str(k), plain(v)) for k, v in sorted(methods.items()) if k not in ("text", "paragraphs", "notes")]
    shown = {k for k, _ in rows}
    rows += [(f"plan.{k}", plain(v)) for k, v in sorted(plan.to_dict().items()) if k != "expectations" and f"plan.{k}" not in shown]
    return rows


def _table(obj: Any, name_key: str) -> list[dict[str, Any]]:
    """Normalise fixed effects / variance components (list of dicts, or dict name -> dict/number)."""
    if isinstance(obj, list):
        return [dict(x) if isinstance(x, dict) else {name_key: str(x)} for x in obj]
    if isinstance(obj, dict):
        out = []
        for k, v in obj.items():
            out.append({name_key: k, **v} if isinstance(v, dict) else {name_key: k, "value": v})
        return out
    return []


def _cells(row: dict[str, Any], cols: list[str]) -> list[str]:
    out = []
    for c in cols:
        v = row.get(c)
        if c in ("p", "p_value", "p_adj") and isinstance(v, (int, float)) and not isinstance(v, bool):
            out.append(fmt_p(v))
        elif isinstance(v, float) and math.isfinite(v):
            out.append(fmt_float(v, 4))
        else:
            out.append(plain(v))
    return out


def _is_records(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def _details(m: dict[str, Any], skip: set[str]) -> tuple[list[tuple[str, str]], list[dict[str, Any]]]:
    """Every other recorded field: scalars as facts, lists of records as small tables (one level of
    nested dicts flattened as ``key.sub``)."""
    facts: list[tuple[str, str]] = []
    tables: list[dict[str, Any]] = []

    def visit(key: str, v: Any, depth: int) -> None:
        if _is_records(v):
            cols = list(dict.fromkeys(k for r in v for k in r))
            tables.append({"name": key, "cols": cols, "rows": [_cells(r, cols) for r in v]})
        elif isinstance(v, dict) and depth == 0 and any(_is_records(x) or isinstance(x, dict) for x in v.values()):
            for k, x in v.items():
                visit(f"{key}.{k}", x, depth + 1)
        else:
            facts.append((key, plain(v)))

    for k, v in m.items():
        if k not in skip:
            visit(str(k), v, 0)
    return facts, tables


def model_cards(models: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One card per fitted model: formulas, flags (converged, singular/boundary), fixed effects,
    variance components, warnings and every other recorded field — nothing is hidden."""
    cards = []
    for m in models:
        fe = _table(m.get("fixed_effects"), "term")
        vc = _table(m.get("variance_components"), "component")
        fe_cols = list(dict.fromkeys(k for r in fe for k in r))
        vc_cols = list(dict.fromkeys(k for r in vc for k in r))
        warns = [str(w) for w in (m.get("warnings") or [])]
        flags = []
        if "converged" in m:
            flags.append(("converged" if m["converged"] else "not converged", "ok" if m["converged"] else "bad"))
        for key in ("singular", "boundary", "singular_hessian", "zeroed_effects"):
            if m.get(key):
                flags.append((key.replace("_", " "), "bad"))
        cross = m.get("crosscheck")
        if isinstance(cross, dict) and cross.get("error"):
            flags.append(("cross-check failed", "warn"))
        elif isinstance(cross, dict) and cross.get("disagree"):
            flags.append(("cross-check disagrees", "bad"))
        if m.get("status") not in (None, "ok"):
            flags.append((f"status: {m['status']}", "bad"))
        flags.append((f"{len(warns)} warning{'s' if len(warns) != 1 else ''}", "warn" if warns else "ok"))
        skip = {"fixed_effects", "variance_components", "warnings", "name", "formula_statsmodels", "formula_lme4",
                "r_call"}
        facts, tables = _details(m, skip)
        cards.append({
            "name": str(m.get("name", f"model {len(cards) + 1}")),
            "formula": m.get("formula_statsmodels"),
            "formula_lme4": m.get("formula_lme4"),
            "r_call": m.get("r_call"),
            "flags": flags,
            "warnings": warns,
            "fixed_cols": fe_cols,
            "fixed_rows": [_cells(r, fe_cols) for r in fe],
            "vc_cols": vc_cols,
            "vc_rows": [_cells(r, vc_cols) for r in vc],
            "facts": facts,
            "tables": tables,
        })
    return cards


def provenance_rows(provenance: dict[str, Any], inputs: list[dict[str, Any]], environment: dict[str, str]) -> list[tuple[str, str]]:
    """Provenance as (name, value) rows: what the analysis saw in the table, the input files with
    their sha256, and the environment that rendered the report."""
    units = {"n_rows": "rows", "n_runs": "runs", "n_spec_hashes": "spec hashes", "wall_seconds": "s of training"}
    rows = [(str(k), f"{plain(v)} {units[k]}" if k in units and isinstance(v, (int, float)) else plain(v))
            for k, v in sorted(provenance.items())]
    for i, f in enumerate(inputs):
        rows.append((f"input {i + 1}", f"{f['path']} — {f.get('rows', '?')} rows, sha256 {f.get('sha256', '—')}"))
    rows += [(f"rendered with {k}", v) for k, v in environment.items()]
    return rows
