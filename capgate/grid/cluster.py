"""Checks and settings that let one grid run on a multi-node Ray cluster.

* :func:`resolved_roots`: every dataset ``root`` of the spec, ``${VAR}``s expanded **in the
  driver**; the mapping travels with each trial and stage task (workers never read their own
  environment for dataset paths: a ``ray start`` node does not see the driver's shell).
* :func:`runtime_env`: the object-storage settings (the ``AWS_*`` variables the driver sees) that
  Ray's runtime environment gives every worker, so credentials reach nodes started elsewhere.
* :func:`check_fits`: refuse a grid whose per-trial or per-stage resources fit on no node, naming
  the resource, the largest node and the ``--set`` that fixes it (its trials would wait forever).
* :func:`check_nodes`: a tiny task pinned to each alive node writes, reads and removes one probe
  file in the storage; a node that cannot is named in the error (a node that left the cluster
  meanwhile, e.g. one just removed that Ray still listed as alive, is skipped with a warning).

Everything here runs in the driver and imports neither torch nor timm.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
import time
from typing import Any

from capgate.store.location import Location, location
from capgate.data.roots import SYNTHETIC, resolve_root
from capgate.errors import GridError, SpecError

__all__ = ["resolved_roots", "runtime_env", "check_fits", "check_nodes", "STORAGE_ENV"]

log = logging.getLogger("capgate.grid")

#: Environment variables the driver forwards to every worker (object storage endpoint and credentials).
STORAGE_ENV = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
               "AWS_REGION", "AWS_DEFAULT_REGION", "GOOGLE_APPLICATION_CREDENTIALS")


def resolved_roots(plan: Any) -> dict[str, str]:
    """``{path as written in the spec: resolved path}`` for every non-synthetic dataset root and
    every weights file an init or a stage names (raises :class:`SpecError` naming an unset
    variable, as the preflight does)."""
    refs = [ref for ts in plan.study.train_sets for ref in ts.datasets]
    refs += [st.data for st in plan.study.stages if st.data is not None]
    out = {ref.root: str(resolve_root(ref, None)) for ref in refs if ref.root != SYNTHETIC}
    files = [i.checkpoint for i in plan.study.inits if i.checkpoint]
    files += [st.checkpoint for st in plan.stages if st.checkpoint]  # per rung: ``{rung}`` replaced
    for text in files:
        out[text] = str(Path(os.path.expandvars(text)).expanduser())
    return out


def runtime_env() -> dict[str, Any]:
    """Ray's ``runtime_env`` carrying the storage variables set in the driver (empty when none)."""
    env = {k: os.environ[k] for k in STORAGE_ENV if os.environ.get(k)}
    return {"env_vars": env} if env else {}


def _alive_nodes() -> list[dict[str, Any]]:
    import ray

    return [n for n in ray.nodes() if n.get("Alive")]


def check_fits(want: dict[str, float], where: str, nodes: list[dict[str, Any]] | None = None) -> None:
    """Raise :class:`SpecError` when no single node has ``want`` (``{"cpu", "gpu"}``) free in total."""
    nodes = _alive_nodes() if nodes is None else nodes
    if not nodes:
        return
    for key, ray_key, unit in (("cpu", "CPU", "CPUs"), ("gpu", "GPU", "GPUs")):
        need = float(want.get(key, 0) or 0)
        if need <= 0:
            continue
        have = [(float(n.get("Resources", {}).get(ray_key, 0)), n.get("NodeManagerAddress", "?")) for n in nodes]
        best, addr = max(have)
        if best < need:
            fix = (f"--set {where}.{key}={best:g}" if best > 0 else
                   f"--set {where}.{key}=0" if key == "gpu" else f"--set {where}.{key}=1")
            raise SpecError(f"spec key '{where}.{key}' = {need:g} but no node of the Ray cluster has {need:g} "
                            f"{unit} (largest: {best:g} on node {addr}, {len(nodes)} nodes); its trials would "
                            f"wait forever. Add such a node (--address of a bigger cluster) or {fix}")


def _probe(storage: str, name: str) -> dict[str, Any]:
    """Inside a Ray task on one node: write, read back and remove one small file."""
    host = socket.gethostname()
    try:
        probe = location(storage) / ".capgate-probe" / f"{name}.txt"
        text = f"{host} {time.time()}"
        probe.write_text(text)
        back = probe.read_text()
        probe.unlink()
        if back != text:
            return {"ok": False, "host": host, "error": f"read back {back!r} instead of {text!r}"}
        return {"ok": True, "host": host, "error": ""}
    except Exception as exc:  # reported to the driver, which names the node
        return {"ok": False, "host": host, "error": f"{type(exc).__name__}: {exc}"}


def check_nodes(storage: Location, timeout: float = 120.0) -> int:
    """Run :func:`_probe` on every alive node; raise :class:`GridError` naming each node that cannot
    read and write ``storage``. Returns the number of nodes checked."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = _alive_nodes()
    probe = ray.remote(_probe)
    refs = {}
    for n in nodes:
        strategy = NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
        refs[n["NodeID"]] = (n, probe.options(num_cpus=0, scheduling_strategy=strategy, max_retries=0)
                             .remote(storage.portable(), n["NodeID"][:12]))
    bad = []
    left = 0
    for node_id, (n, ref) in refs.items():
        where = f"node {n.get('NodeManagerAddress', '?')} (id {node_id[:12]})"
        try:
            out = ray.get(ref, timeout=timeout)
        except ray.exceptions.TaskUnschedulableError:
            # A node that died shortly before (Ray still listed it as alive) is not a node that
            # cannot reach the storage: its trials will run elsewhere.
            log.warning("[grid] %s left the Ray cluster during the storage check; skipped", where)
            left += 1
            continue
        except Exception as exc:
            bad.append(f"{where}: the probe task did not finish ({type(exc).__name__}: {str(exc)[:200]})")
            continue
        if not out["ok"]:
            bad.append(f"{where}, host {out['host']}: {out['error'][:300]}")
    if bad:
        raise GridError(f"storage {storage} is not readable and writable from every node of the Ray cluster:\n"
                        + "\n".join(f"  {b}" for b in bad)
                        + "\ngive --storage a folder every node mounts at the same path (NFS) or an object-store "
                          "URI (s3://bucket/prefix with AWS_ENDPOINT_URL / AWS_ACCESS_KEY_ID / "
                          "AWS_SECRET_ACCESS_KEY set in the driver's environment)")
    return len(nodes) - left
