"""Task models: a ResNet18 classifier and a U-Net segmenter, built by task name."""

from __future__ import annotations

from torch import nn

from .._checks import check_choice
from .resnet import ResNet18, load_torchvision_weights, resnet18
from .unet import UNet

TASKS = ("classification", "segmentation")


def build_model(task: str, **kw) -> nn.Module:
    """The task model for ``task``.

    ``classification``: :func:`resnet18` (``num_classes=9``, ``pretrained=False``);
    ``segmentation``: :class:`UNet` (``width=16``, ``depth=4``).

    >>> type(build_model("segmentation", width=4)).__name__
    'UNet'
    """
    check_choice(task, TASKS, "task")
    if task == "classification":
        return resnet18(**kw)
    return UNet(**kw)


__all__ = ["TASKS", "ResNet18", "UNet", "build_model", "load_torchvision_weights", "resnet18"]
