"""Turning an arbitrary picture of a digit into what the model was trained on: MNIST's preprocessing
(bright ink on black, the ink's bounding box scaled into a 20/28 box, centre of mass centred)."""

from __future__ import annotations

import struct

import numpy as np
from PIL import Image, ImageOps

from .errors import ImageError

BOX_FRACTION = 20 / 28     # MNIST fits each digit into 20×20 pixels of a 28×28 frame
MIN_CONTRAST = 0.04        # ink must differ from the background by 4 % of full scale
NOISE_FLOOR = 0.1          # after stretching, fainter pixels are background (paper grain, JPEG noise)
WORKING_SIDE = 1024       # larger pictures are first reduced (area average) to bound time and memory


def _luminance(image: Image.Image) -> np.ndarray:
    """Grey levels in [0, 1] (1 = white), transparency composited over white."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        values = np.nan_to_num(np.asarray(image, dtype=np.float32))
        if image.mode.startswith("I;16"):
            full_scale = 65535.0
        elif image.mode == "F" and values.max(initial=0) <= 1.0:
            full_scale = 1.0
        else:
            full_scale = 65535.0 if values.max(initial=0) > 255 else 255.0
        return np.clip(values / full_scale, 0.0, 1.0)
    try:
        if "A" in image.mode or "a" in image.mode or "transparency" in image.info or image.mode == "P":
            rgba = image.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            image = Image.alpha_composite(white, rgba)
        grey = image.convert("L")
    except ValueError as error:  # modes PIL cannot convert, e.g. LAB
        raise ImageError("unsupported", f"unsupported colour mode {image.mode} ({error})") from error
    return np.asarray(grey, dtype=np.float32) / 255.0


def _reduce(grey: np.ndarray) -> np.ndarray:
    scale = WORKING_SIDE / max(grey.shape)
    if scale >= 1:
        return grey
    size = (max(1, round(grey.shape[1] * scale)), max(1, round(grey.shape[0] * scale)))
    return np.asarray(Image.fromarray(grey).resize(size, Image.BOX))


def _ink(grey: np.ndarray) -> np.ndarray:
    """Ink strength in [0, 1] over a zero background, whichever the polarity of the picture."""
    border = np.concatenate([grey[0], grey[-1], grey[1:-1, 0], grey[1:-1, -1]])
    background = float(np.median(border))
    if background > (grey.min() + grey.max()) / 2:  # light background: dark strokes are the ink
        grey, background = 1.0 - grey, 1.0 - background
    contrast = grey.max() - background
    if contrast < MIN_CONTRAST:
        raise ImageError("invalid", "the image is blank: no strokes found")
    ink = np.clip((grey - background) / contrast, 0.0, 1.0)
    ink[ink < NOISE_FLOOR] = 0.0
    return ink


def _fit(ink: np.ndarray, box: tuple[int, int]) -> np.ndarray:
    """The ink's bounding box, scaled (aspect kept, antialiased) to fit `box`, peak stretched to 1."""
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    crop = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    scale = min(box[0] / crop.shape[0], box[1] / crop.shape[1])
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    scaled = np.asarray(Image.fromarray(crop.astype(np.float32)).resize(size, Image.LANCZOS))
    scaled = np.clip(scaled, 0.0, None)
    if scaled.max() <= 0:
        raise ImageError("invalid", "the image is blank: no strokes found")
    return scaled / scaled.max()


def _centre(patch: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """`patch` in a zero frame of `shape`, shifted so that its centre of mass is the frame's centre."""
    rows, cols = np.indices(patch.shape)
    mass = patch.sum()
    com = ((rows * patch).sum() / mass, (cols * patch).sum() / mass)
    # MNIST's centres of mass sit at pixel index (14, 14) of 28×28, i.e. H/2, not (H − 1)/2.
    top = round(shape[0] / 2 - com[0])
    left = round(shape[1] / 2 - com[1])
    frame = np.zeros(shape)
    src_top, src_left = max(0, -top), max(0, -left)
    dst_top, dst_left = max(0, top), max(0, left)
    height = min(patch.shape[0] - src_top, shape[0] - dst_top)
    width = min(patch.shape[1] - src_left, shape[1] - dst_left)
    frame[dst_top:dst_top + height, dst_left:dst_left + width] = \
        patch[src_top:src_top + height, src_left:src_left + width]
    return frame


def to_model_input(image: Image.Image, shape: tuple[int, int] = (28, 28)) -> np.ndarray:
    """uint8 H×W with 255 = ink, preprocessed like MNIST, from a picture of any mode and size."""
    try:
        image = ImageOps.exif_transpose(image)
    except (ValueError, OSError, SyntaxError, struct.error, KeyError):
        pass  # an unreadable EXIF orientation: take the pixels as stored
    ink = _ink(_reduce(_luminance(image)))
    box = (max(1, round(shape[0] * BOX_FRACTION)), max(1, round(shape[1] * BOX_FRACTION)))
    frame = _centre(_fit(ink, box), shape)
    return np.round(frame * 255).astype(np.uint8)
