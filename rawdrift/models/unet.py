"""A compact U-Net for binary segmentation of ``(B, 3, H, W)`` views.

Encoder: ``depth`` stages of (3x3 conv, BN, ReLU) x 2 followed by 2x2 max pooling,
with ``width * 2**i`` channels at stage ``i``; a bottleneck; a decoder of 2x2
transposed convolutions, skip concatenation and (conv, BN, ReLU) x 2; a 1x1
convolution to one logit channel.

Sizes that are not multiples of ``2**depth`` are padded on the input (edge
values repeated, scipy ``"nearest"`` mode, split evenly between the two sides)
and the logits are cropped back, so the output always has the input's size.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._checks import check_image, check_int
from ..isp.filters import pad2d


def _double_conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """U-Net returning ``(B, 1, H, W)`` logits (foreground where the logit is > 0).

    Args:
        width: channels of the first stage (doubled at each of the ``depth`` stages).
        depth: number of 2x downsamplings.
        in_channels: input channels (3 for RGB views).

    >>> UNet(width=4)(torch.rand(1, 3, 40, 40)).shape
    torch.Size([1, 1, 40, 40])
    """

    def __init__(self, width: int = 16, depth: int = 4, in_channels: int = 3):
        super().__init__()
        check_int(width, "width", minimum=1)
        check_int(depth, "depth", minimum=1)
        check_int(in_channels, "in_channels", minimum=1)
        self.depth = depth
        self.in_channels = in_channels
        chans = [width * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList()
        c_prev = in_channels
        for c in chans[:-1]:
            self.down.append(_double_conv(c_prev, c))
            c_prev = c
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = _double_conv(chans[-2], chans[-1])
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for i in reversed(range(depth)):
            self.up.append(nn.ConvTranspose2d(chans[i + 1], chans[i], kernel_size=2, stride=2))
            self.dec.append(_double_conv(2 * chans[i], chans[i]))
        self.head = nn.Conv2d(chans[0], 1, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        check_image(x, "x", channels=self.in_channels)
        h, w = x.shape[-2:]
        m = 2**self.depth
        ph, pw = (-h) % m, (-w) % m
        pad = (ph // 2, ph - ph // 2, pw // 2, pw - pw // 2)
        if ph or pw:
            x = pad2d(x, pad, mode="nearest")
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for up, dec, skip in zip(self.up, self.dec, reversed(skips)):
            x = dec(torch.cat([up(x), skip], dim=1))
        y = self.head(x)
        return y[..., pad[0] : pad[0] + h, pad[2] : pad[2] + w]
