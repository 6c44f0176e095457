"""Batched image augmentation (random crop, horizontal flip, rotation) without torchvision.

The trainer augments whole mini-batches on whatever device they live on, so every transform here
is a tensor op over the batch, and all randomness is drawn from the ``torch.Generator`` passed in:
the same generator state gives the same augmented batch, which keeps runs reproducible.
Random numbers are drawn on the CPU (where the generator lives) and moved to the batch's device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from routing_rl.data.base import Augment


def random_crop(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Zero-pad each image by ``pad`` pixels and crop it back to its size at a random offset.

    Padding is zero in the standardised space, i.e. the dataset's mean colour.
    """
    if pad <= 0:
        return x
    b, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device)[None, :])[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device)[None, :])[:, None, None, :]
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    channel = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, channel, rows, cols]


def random_hflip(x: torch.Tensor, generator: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """Mirror each image left-right with probability ``p``."""
    flip = (torch.rand(x.shape[0], generator=generator) < p).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def random_rotation(x: torch.Tensor, max_degrees: float, generator: torch.Generator) -> torch.Tensor:
    """Rotate each image about its centre by an angle uniform in ``[-max_degrees, max_degrees]``.

    Bilinear sampling via :func:`torch.nn.functional.affine_grid`/``grid_sample``; pixels that come
    from outside the image are zero (the mean colour).
    """
    if max_degrees <= 0:
        return x
    b = x.shape[0]
    angles = (torch.rand(b, generator=generator) * 2.0 - 1.0) * math.radians(max_degrees)
    cos, sin = torch.cos(angles), torch.sin(angles)
    zero = torch.zeros_like(angles)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    theta = theta.to(device=x.device, dtype=x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


@dataclass(frozen=True)
class ImageAugment:
    """Crop (``pad``), flip (if ``hflip``) and rotate (``max_degrees``) a float batch ``[B, C, H, W]``.

    A small frozen dataclass rather than a closure, so that it pickles (worker processes, saved
    configs) and shows its settings in ``repr``. It satisfies :data:`routing_rl.data.base.Augment`.
    """

    pad: int = 4
    max_degrees: float = 15.0
    hflip: bool = True

    def __post_init__(self) -> None:
        if self.pad < 0 or self.max_degrees < 0:
            raise ValueError("pad and max_degrees must be non-negative")

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"image augmentation expects [B, C, H, W], got shape {tuple(x.shape)}")
        if x.shape[0] == 0:
            return x
        x = random_crop(x, self.pad, generator)
        if self.hflip:
            x = random_hflip(x, generator)
        return random_rotation(x, self.max_degrees, generator)


def make_image_augment(pad: int = 4, max_degrees: float = 15.0, hflip: bool = True) -> Augment:
    """The paper's CIFAR training augmentation as an :data:`Augment`: random crop after zero-padding
    by ``pad``, random horizontal flip, random rotation up to ``max_degrees``.

    The result maps a float batch and a generator to a new batch of the same shape; set ``pad=0``,
    ``hflip=False`` or ``max_degrees=0`` to switch a transform off.
    """
    return ImageAugment(pad=pad, max_degrees=max_degrees, hflip=hflip)
