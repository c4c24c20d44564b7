"""ResNet18 in plain torch, with exactly torchvision's ``resnet18`` parameter names.

The layer names (``conv1``, ``bn1``, ``layer1.0.conv1``, ..., ``layer4.1.bn2``,
``layerN.0.downsample.0/1``, ``fc``) and shapes match torchvision, so an
ImageNet state dict loads without renaming (:func:`load_torchvision_weights`).
Global average pooling is adaptive, so any input side works; the task engine
uses even sides >= 32 (a 32-pixel input reaches ``layer4`` as 1x1).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._checks import check_image, check_int


def _conv3x3(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and an identity (or 1x1 projection) shortcut."""

    expansion = 1

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = _conv3x3(c_in, c_out, stride)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(c_out, c_out)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(
                nn.Conv2d(c_in, c_out, kernel_size=1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + shortcut)


class ResNet18(nn.Module):
    """ResNet18 classifier for ``(B, 3, H, W)`` views; returns ``(B, num_classes)`` logits.

    Args:
        num_classes: output classes (9 for Raw-Microscopy).
        in_channels: input channels (3 for RGB views).

    >>> ResNet18(num_classes=9)(torch.rand(2, 3, 32, 32)).shape
    torch.Size([2, 9])
    """

    def __init__(self, num_classes: int = 9, in_channels: int = 3):
        super().__init__()
        check_int(num_classes, "num_classes", minimum=1)
        check_int(in_channels, "in_channels", minimum=1)
        self.num_classes = num_classes
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._stage(64, 64, stride=1)
        self.layer2 = self._stage(64, 128, stride=2)
        self.layer3 = self._stage(128, 256, stride=2)
        self.layer4 = self._stage(256, 512, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)
        # torchvision's initialisation: He (fan_out) for convolutions, BN at identity.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @staticmethod
    def _stage(c_in: int, c_out: int, stride: int) -> nn.Sequential:
        return nn.Sequential(BasicBlock(c_in, c_out, stride), BasicBlock(c_out, c_out, 1))

    def features(self, x: Tensor) -> Tensor:
        """``(B, 512)`` pooled features before the classifier."""
        check_image(x, "x", channels=self.conv1.in_channels)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.features(x))


def resnet18(num_classes: int = 9, pretrained: bool = False) -> ResNet18:
    """Build a :class:`ResNet18`; ``pretrained=True`` copies torchvision's ImageNet weights."""
    model = ResNet18(num_classes=num_classes)
    if pretrained:
        load_torchvision_weights(model)
    return model


def load_torchvision_weights(model: ResNet18, weights: str = "IMAGENET1K_V1") -> ResNet18:
    """Copy torchvision's ImageNet ``resnet18`` weights into ``model`` (in place).

    The final ``fc`` layer is copied only when ``model`` has 1000 classes; otherwise
    it keeps its fresh initialisation. Requires ``torchvision`` (and, the first
    time, internet access for torchvision to download the weights).

    Raises:
        ImportError: torchvision is not installed.
    """
    if not isinstance(model, ResNet18):
        raise TypeError(f"model: expected a rawdrift ResNet18, got {type(model).__name__}")
    try:
        import torchvision
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "load_torchvision_weights needs torchvision (pip install torchvision) to fetch the "
            "ImageNet resnet18 weights; train from scratch with pretrained=False instead"
        ) from err
    source = torchvision.models.resnet18(weights=weights).state_dict()
    if model.fc.out_features != source["fc.weight"].shape[0]:
        source = {k: v for k, v in source.items() if not k.startswith("fc.")}
    if model.conv1.in_channels != source["conv1.weight"].shape[1]:
        raise ValueError(
            f"model: ImageNet weights expect 3 input channels, model has {model.conv1.in_channels}"
        )
    missing, unexpected = model.load_state_dict(source, strict=False)
    if unexpected or any(not k.startswith("fc.") for k in missing):
        raise RuntimeError(f"torchvision weights did not match: missing {missing}, unexpected {unexpected}")
    return model
