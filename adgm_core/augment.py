"""Random translations of flattened images, drawn per image from the trainer's generator."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_shift(images: torch.Tensor, shape: tuple[int, int], max_shift: int,
                 generator: torch.Generator) -> torch.Tensor:
    """`images` (B, H·W) moved by a uniform whole number of pixels in [-max_shift, max_shift] along
    each axis, independently per image; what moves in from the border is 0 (background)."""
    if max_shift == 0:
        return images
    height, width = shape
    n, device = len(images), images.device
    padded = F.pad(images.view(n, height, width), (max_shift,) * 4)
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2, n), generator=generator, device=device)
    rows = dy[:, None] + torch.arange(height, device=device)
    cols = dx[:, None] + torch.arange(width, device=device)
    moved = padded[torch.arange(n, device=device)[:, None, None], rows[:, :, None], cols[:, None, :]]
    return moved.reshape(n, height * width)
