"""Decoding untrusted uploads: PNG and JPEG only, size checked from the header before decoding."""

from __future__ import annotations

import io
import struct
import warnings
from typing import BinaryIO

from PIL import Image, JpegImagePlugin, PngImagePlugin, UnidentifiedImageError

from .errors import ImageError

# Opening through the format plugins themselves (not Image.open) reads only the header and skips
# PIL's global decompression-bomb check, so the limit below is the only one and its error is ours.
DECODERS = {
    b"\x89PNG\r\n\x1a\n": PngImagePlugin.PngImageFile,
    b"\xff\xd8\xff": JpegImagePlugin.JpegImageFile,
}
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, Image.DecompressionBombError)


def _format_name(data: bytes) -> str | None:
    """The format PIL recognises in `data`, or None."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                return image.format
    except (UnidentifiedImageError, *DECODE_ERRORS):
        return None


def decode_upload(data: bytes, max_pixels: int = 16_000_000) -> Image.Image:
    """A fully loaded PIL image from PNG or JPEG bytes; ImageError for anything else."""
    if not data:
        raise ImageError("invalid", "the upload is empty")
    decoder = next((cls for magic, cls in DECODERS.items() if data.startswith(magic)), None)
    if decoder is None:
        found = _format_name(data)
        what = f"image format {found}" if found else "file: it is not a recognised image"
        raise ImageError("unsupported", f"unsupported {what}; upload a PNG or JPEG")
    try:
        image = decoder(io.BytesIO(data))
    except DECODE_ERRORS as error:
        raise ImageError("invalid", f"the {decoder.format} header is corrupt ({error})") from error
    width, height = image.size
    if width * height > max_pixels:
        raise ImageError(
            "too_large",
            f"the image is {width}×{height} = {width * height:,} pixels; the limit is {max_pixels:,}",
        )
    if width == 0 or height == 0:
        raise ImageError("invalid", f"the image has no pixels ({width}×{height})")
    try:
        image.load()
    except DECODE_ERRORS as error:
        raise ImageError("invalid", f"the {decoder.format} data is truncated or corrupt ({error})") from error
    return image


def header_size(stream: BinaryIO) -> tuple[int, int] | None:
    """(width, height) from the header of a PNG or JPEG in `stream`, reading no further than the
    header; None for anything else, or a header that cannot be read."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(stream, formats=["PNG", "JPEG"]) as image:
                return image.size
    except (UnidentifiedImageError, *DECODE_ERRORS):
        return None
