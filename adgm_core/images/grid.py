"""A PNG grid of images, for samples and analogies."""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image


def png_grid(images: np.ndarray, columns: int | None = None, padding: int = 2) -> bytes:
    """PNG bytes (mode L) of uint8 N×H×W images in rows of `columns` (default min(N, 10)),
    separated and framed by `padding` black pixels. The same input gives the same bytes."""
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError("png_grid needs a uint8 array of shape N×H×W")
    count, height, width = images.shape
    if count == 0:
        raise ValueError("png_grid needs at least one image")
    columns = min(count, 10) if columns is None else columns
    if columns < 1 or padding < 0:
        raise ValueError(f"columns must be ≥ 1 and padding ≥ 0, got {columns} and {padding}")
    rows = math.ceil(count / columns)
    canvas = np.zeros((padding + rows * (height + padding), padding + columns * (width + padding)),
                      dtype=np.uint8)
    for index, tile in enumerate(images):
        top = padding + (index // columns) * (height + padding)
        left = padding + (index % columns) * (width + padding)
        canvas[top:top + height, left:left + width] = tile
    buffer = io.BytesIO()
    Image.fromarray(canvas).save(buffer, format="PNG")
    return buffer.getvalue()
