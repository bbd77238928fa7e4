"""capgate's MACs against an independent counter: fvcore's ``FlopCountAnalysis`` (TorchScript
tracing, its own per-operator formulas; 1 fvcore "flop" = 1 multiply-accumulate), for every
standard model and every ladder rung's classifier.

The convention (:data:`capgate.models.profile.MACS_CONVENTION`) counts convolutions and matrix
products. fvcore counts those too (``conv``, ``linear``, ``addmm``, ``matmul``, ...), by the same
formula (output elements x input channels per group x kernel area; bias adds not counted), so
their sum must equal capgate's figure EXACTLY. Every other operator fvcore counts is outside the
convention and each is explained in :data:`OUTSIDE` ; fvcore leaves activations, elementwise
adds and multiplies, ``mean`` and max pooling uncounted, as capgate does.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from capgate.models import build_classifier, get_rung, ladder
from capgate.models.ladder import family_names, standard_names
from capgate.models.profile import MACS_CONVENTION, measure_macs
from capgate.models.standard import build_standard

fvcore_nn = pytest.importorskip("fvcore.nn", reason="fvcore is in the dev extra")

#: fvcore operators inside capgate's convention.
INSIDE = {"conv", "linear", "addmm", "matmul", "mm", "bmm", "einsum"}
#: fvcore operators outside it, and what fvcore counts for them.
OUTSIDE = {
    "batch_norm": "eval-mode BatchNorm: 2 per output element (scale and shift); capgate counts no normalization",
    "adaptive_avg_pool2d": "1 per input element (the sum); capgate counts no pooling",
}
#: The smallest rung of each family and three standard models run by default; the rest are slow.
DEFAULT_RUNGS = {ladder(f)[-1].name for f in family_names()}
DEFAULT_STANDARD = {"squeezenet1_1", "mobilenetv3_small_100", "shufflenet_v2_x1_0"}


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def fvcore_by_operator(model: torch.nn.Module, resolution: int) -> dict[str, int]:
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript deprecation and tracer warnings
        analysis = fvcore_nn.FlopCountAnalysis(model, torch.rand(1, 3, resolution, resolution))
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        counts = {op: int(n) for op, n in analysis.by_operator().items()}
        uncounted = set(analysis.unsupported_ops())
    # nothing that multiplies matrices or convolves escapes fvcore (then both counts would be partial)
    assert not {op for op in uncounted if any(w in op for w in ("conv", "mm", "linear", "matmul", "einsum"))}
    return counts


def compare(model: torch.nn.Module, resolution: int) -> dict[str, int]:
    """Assert the rule above; return fvcore's per-operator counts."""
    ours = measure_macs(model, resolution)
    counts = fvcore_by_operator(model, resolution)
    assert set(counts) <= INSIDE | set(OUTSIDE), f"unexplained fvcore operators: {set(counts) - INSIDE - set(OUTSIDE)}"
    assert sum(n for op, n in counts.items() if op in INSIDE) == ours
    return counts


def test_resnet18_by_hand():
    counts = compare(build_standard("resnet18"), 224)
    # fc: 512 x 1000; BatchNorm outputs: 64x112x112 + 4 x 64x56x56 + 5 x 128x28x28 + 5 x 256x14x14 + 5 x 512x7x7
    # = 2,483,712 elements, 2 each; the pool sums 512x7x7 inputs
    assert counts == {"conv": 1_813_561_344, "linear": 512_000, "batch_norm": 2 * 2_483_712,
                      "adaptive_avg_pool2d": 25_088}
    assert measure_macs(build_standard("resnet18"), 224) == 1_813_561_344 + 512_000


def test_the_convention_names_what_is_counted():
    assert "convolutions and matrix products" in MACS_CONVENTION and "not counted: BatchNorm" in MACS_CONVENTION


@pytest.mark.parametrize("name", [pytest.param(n, marks=() if n in DEFAULT_STANDARD else pytest.mark.slow)
                                  for n in standard_names()])
def test_every_standard_model_against_fvcore(name):
    counts = compare(build_standard(name), 64)
    assert counts["conv"] > 0
    if name != "squeezenet1_1":  # SqueezeNet has no BatchNorm and a convolutional classifier
        assert counts["batch_norm"] > 0 and counts["linear"] > 0


@pytest.mark.parametrize("name", [pytest.param(r.name, marks=() if r.name in DEFAULT_RUNGS else pytest.mark.slow)
                                  for r in ladder()])
def test_every_ladder_rung_classifier_against_fvcore(name):
    counts = compare(build_classifier(get_rung(name), 10), 64)
    # the ladder's classifier averages with mean() (uncounted by both) and ends in one linear layer
    assert set(counts) == {"conv", "batch_norm", "linear"}
