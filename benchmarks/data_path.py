"""Images/s and peak RSS of the two data paths: in memory (memory-mapped cache) and streamed.

Writes an ImageNet-style folder of ``--images`` noise JPEGs (``--src WxH``, noise so the files
are as large as photos), then, each in a fresh process so peak RSS is its own:

* ``memory``: the split decoded once at ``--size`` into the memory-mapped cache (the decode time
  is printed apart), then ``--epochs`` epochs of shuffled, flipped batches from it;
* ``memory (cached)``: a second trial of the same split: the cache is mapped, nothing decoded;
* ``stream``: the same epochs streamed by ``--workers`` DataLoader workers decoding each batch
  with ``torchvision.io.decode_jpeg`` (on the GPU with ``--device cuda``).

Peak RSS is the process's own plus its largest worker's (``ru_maxrss`` of self and children);
``anon`` and ``file`` split the process's RSS at the end (``RssAnon``/``RssFile`` of
``/proc/self/status``): the cached path's images are file pages, shared by every process that
maps the same cache, not private memory. The batches are consumed (summed) but no model runs:
this measures what the data path can feed.

    python benchmarks/data_path.py                       # 2000 images at 128 px
    python benchmarks/data_path.py --images 400 --epochs 1
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_folder(root: Path, n: int, src: tuple[int, int], classes: int = 10) -> Path:
    import numpy as np
    from PIL import Image

    done = root / ".complete"
    if done.is_file() and done.read_text() == f"{n} {src}":
        return root
    rng = np.random.default_rng(0)
    for i in range(n):
        wnid = f"n{i % classes:08d}"
        p = root / "train" / wnid / f"{wnid}_{i}.JPEG"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((rng.random((src[1], src[0], 3)) * 255).astype(np.uint8)).save(p, quality=90)
    done.write_text(f"{n} {src}")
    return root


def child(path: str, folder: Path, size: int, epochs: int, batch: int, workers: int, device: str, cache: Path) -> dict:
    import torch

    torch.set_num_threads(1)
    from capgate.data import open_classification
    from capgate.train.tensors import classification_batches, decode_classification

    ds = open_classification("imagenet", folder, "train")
    t0 = time.perf_counter()
    if path.startswith("memory"):
        data = decode_classification(ds, size, cache, memory_budget=1 << 40)
    else:
        data = decode_classification(ds, size, None, memory_budget=1, workers=workers,
                                     decode_device=device if device != "cpu" else None)
    prepare = time.perf_counter() - t0
    gen = torch.Generator().manual_seed(0)
    seen, total = 0, 0.0
    t0 = time.perf_counter()
    for _ in range(epochs):
        for x, y in classification_batches(data, batch, gen, hflip=0.5, drop_last=True):
            total += float(x.sum())
            seen += int(y.shape[0])
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"path": path, "kind": type(data).__name__, "prepare_s": prepare, "images": seen,
            "images_per_s": seen / seconds, "peak_rss_mb": peak / 1024, **_rss_split()}


def _rss_split() -> dict:
    """RssAnon and RssFile of this process in MiB (Linux), else empty."""
    try:
        lines = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return {}
    kb = {k: int(v.split()[0]) for k, _, v in (line.partition(":") for line in lines) if k in ("RssAnon", "RssFile")}
    return {"anon_mb": kb.get("RssAnon", 0) / 1024, "file_mb": kb.get("RssFile", 0) / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--src", default="256x192", help="source JPEG size WxH")
    ap.add_argument("--size", type=int, default=128, help="decoded square size (the recipe's resolution)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--workers", type=int, default=None, help="streaming workers [default: CPUs - 1, at most 8]")
    ap.add_argument("--device", default="cpu", help="decode device of the streaming path (cpu or cuda)")
    ap.add_argument("--dir", default=None, help="where the image folder is written [default: a temp folder]")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    src = tuple(int(v) for v in args.src.split("x"))
    base = Path(args.dir or Path(tempfile.gettempdir()) / f"capgate-data-path-{args.images}-{args.src}")
    folder, cache = base / "folder", base / "cache"
    if args.child:
        print(json.dumps(child(args.child, folder, args.size, args.epochs, args.batch, int(args.workers), args.device,
                               cache)))
        return
    from capgate.train.stream import default_workers
    from capgate.train.tensors import decoded_bytes

    workers = default_workers() if args.workers is None else args.workers
    t0 = time.perf_counter()
    make_folder(folder, args.images, src)
    print(f"folder: {args.images} JPEGs of {src[0]}x{src[1]} in {folder} ({time.perf_counter() - t0:.1f}s); decoded at "
          f"{args.size} px: {decoded_bytes(args.images, args.size) / 2**20:.0f} MiB; streaming workers: {workers}")
    for f in cache.glob("*"):
        f.unlink()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    print(f"{'path':<16} {'kind':<24} {'prepare s':>9} {'images/s':>9} {'peak RSS MiB':>12} {'anon':>6} {'file':>6}")
    for path in ("memory", "memory (cached)", "stream"):
        out = subprocess.run([sys.executable, __file__, "--child", path, "--images", str(args.images), "--src", args.src,
                              "--size", str(args.size), "--epochs", str(args.epochs), "--batch", str(args.batch),
                              "--workers", str(workers), "--device", args.device, "--dir", str(base)],
                             capture_output=True, text=True, env=env, check=False)
        if out.returncode:
            sys.exit(f"{path} failed:\n{out.stderr[-4000:]}")
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{r['path']:<16} {r['kind']:<24} {r['prepare_s']:>9.2f} {r['images_per_s']:>9.0f} {r['peak_rss_mb']:>12.0f}"
              f" {r.get('anon_mb', float('nan')):>6.0f} {r.get('file_mb', float('nan')):>6.0f}")


if __name__ == "__main__":
    main()
