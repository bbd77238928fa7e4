"""Build torchvision's ShuffleNetV2 at a rung's stage widths and repeats (imports torch).

``torchvision.models.ShuffleNetV2(stages_repeats, stages_out_channels)`` takes the stage
configuration as constructor arguments; the rung's multipliers set them (the rule is
:func:`capgate.models._families.shufflenet_v2_config`). The multi-scale
features come from ``torchvision.models.feature_extraction.create_feature_extractor``: a
``GraphModule`` that keeps torchvision's own parameter names (``conv1.0.weight``,
``stage2.0.branch1.0.weight``, ...), so torchvision's ImageNet weights load by name at width 1,
and that drops ``conv5`` and ``fc``. Its output is rewritten to a list of maps and it gets a
``feature_info``, so it is used exactly like a timm ``features_only`` network.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn
from torchvision.models import ShuffleNetV2
from torchvision.models.feature_extraction import DualGraphModule, create_feature_extractor

from capgate.models._families import shufflenet_v2_config
from capgate.models._registry import Rung

__all__ = ["FeatureInfo", "ShuffleNetV2Features", "build_shufflenet_v2"]

#: timm-style feature index -> (node, stride): 0..4 are strides 2..32, as for timm families.
_NODES = {0: ("conv1", 2), 1: ("maxpool", 4), 2: ("stage2", 8), 3: ("stage3", 16), 4: ("stage4", 32)}


class FeatureInfo:
    """The part of timm's ``FeatureInfo`` capgate uses: channels, strides, module names."""

    def __init__(self, channels: list[int], reductions: list[int], modules: list[str]) -> None:
        self._channels, self._reductions, self._modules = list(channels), list(reductions), list(modules)

    def channels(self) -> list[int]:
        return list(self._channels)

    def reduction(self) -> list[int]:
        return list(self._reductions)

    def module_name(self) -> list[str]:
        return list(self._modules)

    def __repr__(self) -> str:
        return f"FeatureInfo(channels={self._channels}, reduction={self._reductions})"


class ShuffleNetV2Features(DualGraphModule):
    """torchvision's traced features network (one graph per train/eval mode) returning a list,
    with a ``feature_info`` and a train/eval mode that survive ``copy.deepcopy`` (which rebuilds
    a GraphModule)."""

    def __init__(self, traced: DualGraphModule, info: FeatureInfo) -> None:
        super().__init__(traced, traced.train_graph, traced.eval_graph, class_name="ShuffleNetV2Features")
        self.feature_info = info

    def __deepcopy__(self, memo):
        copied = super().__deepcopy__(memo)  # rebuilt in train mode: restore the mode too
        copied.feature_info = self.feature_info
        return copied.train(self.training)


def build_shufflenet_v2(rung: Rung, *, features_only: bool, out_indices: tuple[int, ...],
                        checkpoint: Path | None) -> nn.Module:
    """ShuffleNetV2 of ``rung``: a features network at ``out_indices`` (timm numbering), or
    torchvision's full classifier. ``checkpoint`` is loaded by the caller."""
    repeats, channels = shufflenet_v2_config(rung.width, rung.depth)
    net = ShuffleNetV2(repeats, channels)
    if not features_only:
        return net
    bad = [i for i in out_indices if i not in _NODES]
    if bad:
        raise ValueError(f"feature index {bad[0]} is invalid for ShuffleNetV2; valid: {sorted(_NODES)}")
    nodes = [_NODES[i][0] for i in out_indices]
    traced = create_feature_extractor(net, return_nodes={n: str(k) for k, n in enumerate(nodes)})
    for graph in (traced.train_graph, traced.eval_graph):  # one graph per mode
        output = next(n for n in graph.nodes if n.op == "output")
        output.args = ([output.args[0][str(k)] for k in range(len(nodes))],)  # dict of maps -> list
        graph.lint()
    stage_channels = {0: channels[0], 1: channels[0], 2: channels[1], 3: channels[2], 4: channels[3]}
    info = FeatureInfo([stage_channels[i] for i in out_indices], [_NODES[i][1] for i in out_indices], nodes)
    return ShuffleNetV2Features(traced, info)
