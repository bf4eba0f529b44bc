"""Encoding test images into the bytes of an upload."""

import io

import numpy as np
from PIL import Image


def encode(image: np.ndarray | Image.Image, format: str = "PNG", **options) -> bytes:
    """The file bytes of a uint8 array or PIL image in `format` (PNG, JPEG, GIF, …), with Pillow's save options."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()
