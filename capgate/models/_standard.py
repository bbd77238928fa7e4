"""The registered standard full-size classifiers (torch-free declarations).

Each is the upstream network as published, with its own head (timm's ``conv_head`` and
classifier, torchvision's ``fc``/``classifier``): built by ``timm.create_model(name,
pretrained=False, num_classes=N)`` or ``torchvision.models.<name>(weights=None, num_classes=N)``,
so at ``N = 1000`` its parameter count is exactly the published one (``params``; the tests build
each network and compare). For a dataset's classes only the last layer (``head``) differs. The
preprocessing fields are those of the published ImageNet weights (timm's ``pretrained_cfg``,
torchvision's weights ``transforms()``; the tests compare them too). Nothing is downloaded.
"""

from __future__ import annotations

from capgate.models._registry import StandardInfo, register_standard

__all__: list[str] = []

_TIMM = "timm==1.0.31"
_TORCHVISION = "torchvision==0.29.1"
_IMAGENET = dict(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
_TIMM_PRE = dict(**_IMAGENET, input_size=224, crop_pct=0.875, interpolation="bicubic", pinned=_TIMM)
_TV_PRE = dict(**_IMAGENET, input_size=224, crop_pct=0.875, interpolation="bilinear", pinned=_TORCHVISION)

# (name, title, source, params at 1000 classes, last layer); smallest first within a source.
for _info in (
    StandardInfo("squeezenet1_1", "SqueezeNet 1.1", "torchvision", 1_235_496, "classifier.1", **_TV_PRE),
    StandardInfo("shufflenet_v2_x1_0", "ShuffleNetV2 x1.0", "torchvision", 2_278_604, "fc", **_TV_PRE),
    StandardInfo("resnet18", "ResNet-18", "torchvision", 11_689_512, "fc", **_TV_PRE),
    StandardInfo("efficientnet_v2_s", "EfficientNetV2-S", "torchvision", 21_458_488, "classifier.1",
                 **{**_TV_PRE, "input_size": 384, "crop_pct": 1.0}),
    StandardInfo("mobilenetv3_small_100", "MobileNetV3-Small", "timm", 2_542_856, "classifier", **_TIMM_PRE),
    StandardInfo("lcnet_100", "PP-LCNet x1.0", "timm", 2_953_800, "classifier", **_TIMM_PRE),
    StandardInfo("mobilenetv2_100", "MobileNetV2", "timm", 3_504_872, "classifier", **_TIMM_PRE),
    StandardInfo("efficientnet_lite0", "EfficientNet-Lite0", "timm", 4_652_008, "classifier", **_TIMM_PRE),
    StandardInfo("tf_efficientnet_lite0", "EfficientNet-Lite0 (TF port)", "timm", 4_652_008, "classifier",
                 **{**_TIMM_PRE, "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)},
                 note="TensorFlow's 'same' padding and BatchNorm eps 1e-3: the home of weights ported from TF"),
    StandardInfo("ghostnet_100", "GhostNet 1.0", "timm", 5_182_508, "classifier", **_TIMM_PRE),
    StandardInfo("efficientnet_b0", "EfficientNet-B0", "timm", 5_288_548, "classifier", **_TIMM_PRE),
    StandardInfo("mobilenetv3_large_100", "MobileNetV3-Large", "timm", 5_483_032, "classifier", **_TIMM_PRE),
):
    register_standard(_info)
