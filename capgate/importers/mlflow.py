"""Runs of one experiment on an MLflow tracking server, read through its REST API (``/api/2.0/mlflow``;
the standard library only, so no mlflow package is needed to import).

Each run becomes one wide row in MLflow's own ``search_runs`` layout: ``run_id``, ``run_name``,
``status`` (FINISHED, FAILED, KILLED, RUNNING, SCHEDULED), ``started_at``/``ended_at`` (UTC, ISO 8601),
``params.<key>`` (strings, as MLflow stores them), ``metrics.<key>`` (each metric's latest value) and
``tags.<key>``. Log a study's runs with its design as params (``backbone``, ``params``, ``init``,
``train_set``, ``seed``, ...) and one metric per eval set named ``<eval set>/<metric>``
(e.g. ``flir/rgb/map``), and ``capgate import mlflow`` needs no mapping.

Credentials, when the server wants them, come from the environment as for MLflow's own client:
``MLFLOW_TRACKING_TOKEN`` (bearer) or ``MLFLOW_TRACKING_USERNAME`` and ``MLFLOW_TRACKING_PASSWORD``.
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pandas as pd

from capgate.errors import ResultsError

__all__ = ["read_mlflow_runs", "PAGE_SIZE"]

#: Runs asked for per search request (MLflow serves at most 50,000; pages follow next_page_token).
PAGE_SIZE = 1000


def _headers() -> dict[str, str]:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    elif user and password:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    return headers


def _call(uri: str, endpoint: str, *, body: dict[str, Any] | None = None, query: dict[str, str] | None = None,
          timeout: float = 30.0) -> dict[str, Any]:
    """One REST call; returns the JSON answer. A 404 answer is returned as ``{"error_code": ...}``."""
    url = f"{uri.rstrip('/')}/api/2.0/mlflow/{endpoint}"
    if query:
        url += "?" + urllib.parse.urlencode(query)
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers=_headers(), method="GET" if body is None else "POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        if exc.code == 404:
            try:
                return json.loads(text)
            except ValueError:
                pass
        raise ResultsError(f"{uri}: the MLflow server answered {exc.code} to {endpoint} ({text[:200]}); "
                           "check the tracking URI (the server's address, e.g. http://127.0.0.1:5000) and "
                           "MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/PASSWORD") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ResultsError(f"{uri}: cannot read the MLflow server ({exc}); pass the tracking server's "
                           "http(s) address, e.g. http://127.0.0.1:5000, and check that it runs") from None


def _experiment_id(uri: str, experiment: str, timeout: float) -> str:
    got = _call(uri, "experiments/get-by-name", query={"experiment_name": experiment}, timeout=timeout)
    if "experiment" in got:
        return str(got["experiment"]["experiment_id"])
    names = [e.get("name") for e in _call(uri, "experiments/search", body={"max_results": 1000},
                                            timeout=timeout).get("experiments", [])]
    raise ResultsError(f"{uri}: no MLflow experiment named {experiment!r}; experiments there: {sorted(map(str, names))}")


def _iso(ms: Any) -> str | None:
    if ms in (None, "", 0, "0"):
        return None
    return _dt.datetime.fromtimestamp(int(ms) / 1000, tz=_dt.timezone.utc).isoformat(timespec="seconds")


def _row(run: dict[str, Any]) -> dict[str, Any]:
    info, data = run.get("info", {}), run.get("data", {})
    row: dict[str, Any] = {"run_id": info.get("run_id") or info.get("run_uuid"), "run_name": info.get("run_name"),
                           "status": info.get("status"), "started_at": _iso(info.get("start_time")),
                           "ended_at": _iso(info.get("end_time"))}
    for kind, key in (("params", "params"), ("tags", "tags")):
        for item in data.get(key, []):
            row[f"{kind}.{item['key']}"] = item.get("value")
    for item in data.get("metrics", []):
        row[f"metrics.{item['key']}"] = float(item["value"]) if item.get("value") is not None else None
    return row


def read_mlflow_runs(uri: str, experiment: str, *, timeout: float = 30.0) -> pd.DataFrame:
    """Every active run of ``experiment`` on the tracking server at ``uri`` (http or https), one
    wide row each (see the module docstring), in the server's order (newest first)."""
    if urllib.parse.urlsplit(uri).scheme not in ("http", "https"):
        raise ResultsError(f"{uri}: pass an MLflow tracking server's http(s) address, e.g. http://127.0.0.1:5000 "
                           "(a local mlruns folder or sqlite:// store is read through an mlflow server started on it)")
    exp_id = _experiment_id(uri, experiment, timeout)
    rows: list[dict[str, Any]] = []
    token = None
    while True:
        body: dict[str, Any] = {"experiment_ids": [exp_id], "max_results": PAGE_SIZE, "run_view_type": "ACTIVE_ONLY"}
        if token:
            body["page_token"] = token
        page = _call(uri, "runs/search", body=body, timeout=timeout)
        rows += [_row(r) for r in page.get("runs", [])]
        token = page.get("next_page_token")
        if not token:
            break
    return pd.DataFrame(rows)
