"""adgm_core.images: safe decoding of uploads, MNIST-style preprocessing, PNG grids."""

import io
import re
import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from adgm_core.images import ImageError, decode_upload, png_grid, to_model_input
from image_files import encode


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.astype(float).ravel(), b.astype(float).ravel())[0, 1])


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    rows, cols = np.indices(image.shape)
    mass = image.astype(float).sum()
    return (rows * image).sum() / mass, (cols * image).sum() / mass


@pytest.fixture(scope="module")
def digits(mnist) -> np.ndarray:
    """Twenty real MNIST test digits (uint8, ink bright)."""
    return mnist[1].images[:20]


@pytest.fixture(scope="module")
def digit(digits) -> np.ndarray:
    return digits[0]


@pytest.fixture(scope="module")
def reference(digit) -> np.ndarray:
    """The MNIST digit's own preprocessing: what every other rendering of it must come close to."""
    return to_model_input(Image.fromarray(digit))


def with_png_size(png: bytes, width: int, height: int) -> bytes:
    """The same PNG with IHDR claiming another size (CRC fixed, so only the size is a lie)."""
    ihdr = b"IHDR" + struct.pack(">II", width, height) + png[24:29]
    return png[:12] + ihdr + struct.pack(">I", zlib.crc32(ihdr)) + png[33:]


def with_jpeg_size(jpeg: bytes, width: int, height: int) -> bytes:
    sof = jpeg.index(b"\xff\xc0")
    return jpeg[:sof + 5] + struct.pack(">HH", height, width) + jpeg[sof + 9:]


# --- decode_upload -------------------------------------------------------------------------------

def test_decode_png_and_jpeg_round_trip(digit):
    png = decode_upload(encode(Image.fromarray(digit), "PNG"))
    assert png.format == "PNG" and png.size == (28, 28)
    np.testing.assert_array_equal(np.asarray(png), digit)
    jpeg = decode_upload(encode(Image.fromarray(digit).convert("RGB"), "JPEG", quality=95))
    assert jpeg.format == "JPEG" and jpeg.mode == "RGB"
    assert correlation(np.asarray(jpeg.convert("L")), digit) > 0.98


@pytest.mark.parametrize("make, kind, message", [
    (lambda d: b"", "invalid", "the upload is empty"),
    (lambda d: b"hello, I am a text file renamed to digit.png\n", "unsupported",
     "unsupported file: it is not a recognised image; upload a PNG or JPEG"),
    (lambda d: encode(Image.fromarray(d), "GIF"), "unsupported",
     "unsupported image format GIF; upload a PNG or JPEG"),
    (lambda d: encode(Image.fromarray(d), "BMP"), "unsupported", "unsupported image format BMP"),
    (lambda d: encode(Image.fromarray(d), "PNG")[:-60], "invalid", "the PNG data is truncated or corrupt"),
    (lambda d: (lambda j: j[:len(j) // 2])(encode(Image.fromarray(d).resize((280, 280)), "JPEG")),
     "invalid", "the JPEG data is truncated or corrupt"),
    (lambda d: encode(Image.fromarray(d), "JPEG")[:300], "invalid", "the JPEG header is corrupt"),
    (lambda d: encode(Image.fromarray(d), "PNG")[:20], "invalid", "the PNG header is corrupt"),
    (lambda d: (lambda p: p[:30] + b"\x00\x00\x00\x00" + p[34:])(encode(Image.fromarray(d), "PNG")),
     "invalid", "the PNG header is corrupt"),
])
def test_decode_errors(digit, make, kind, message):
    with pytest.raises(ImageError, match=re.escape(message)) as caught:
        decode_upload(make(digit))
    assert caught.value.kind == kind


def test_decode_rejects_bombs_from_the_header_without_pil_warnings():
    tiny_png = encode(Image.new("1", (1, 1)), "PNG")
    bomb = with_png_size(tiny_png, 20000, 20000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PIL's DecompressionBombWarning would fail the test
        with pytest.raises(ImageError, match=re.escape(
                "the image is 20000×20000 = 400,000,000 pixels; the limit is 16,000,000")) as caught:
            decode_upload(bomb)
        assert caught.value.kind == "too_large"
        tiny_jpeg = encode(Image.new("L", (8, 8)), "JPEG")
        with pytest.raises(ImageError, match="10000×10000") as caught:
            decode_upload(with_jpeg_size(tiny_jpeg, 10000, 10000))
        assert caught.value.kind == "too_large"


def test_decode_max_pixels_is_the_limit(digit):
    png = encode(Image.fromarray(digit), "PNG")
    assert decode_upload(png, max_pixels=28 * 28).size == (28, 28)
    with pytest.raises(ImageError, match="the limit is 783") as caught:
        decode_upload(png, max_pixels=28 * 28 - 1)
    assert caught.value.kind == "too_large"


# --- to_model_input ------------------------------------------------------------------------------

def test_mnist_digits_come_back_as_themselves(digits):
    """MNIST was made by this very preprocessing, so applying it to MNIST digits changes little."""
    outputs = [to_model_input(Image.fromarray(d)) for d in digits]
    assert all(out.dtype == np.uint8 and out.shape == (28, 28) for out in outputs)
    assert np.mean([correlation(out, d) for out, d in zip(outputs, digits)]) > 0.97


def test_dark_on_light_photo_like_jpeg(digit, reference):
    inverted = Image.fromarray(255 - digit).resize((100, 100), Image.LANCZOS)
    canvas = Image.new("RGB", (200, 140), "white")
    canvas.paste(inverted, (85, 10))  # off-centre, with a lot of white margin
    upload = decode_upload(encode(canvas, "JPEG", quality=85))
    result = to_model_input(upload)
    assert correlation(result, reference) > 0.8
    row, col = centre_of_mass(result)
    assert abs(row - 14) <= 1 and abs(col - 14) <= 1
    assert result.max() == 255 and result[0].max() == 0  # ink bright, border background


def test_sixteen_bit_png_is_scaled(digit, reference):
    deep = Image.fromarray(digit.astype(np.uint16) * 257)
    assert deep.mode == "I;16"
    decoded = decode_upload(encode(deep, "PNG"))
    assert decoded.mode.startswith("I;16")
    assert np.abs(to_model_input(decoded).astype(int) - reference).max() <= 2


def test_cmyk_jpeg(digit):
    grey = Image.fromarray(255 - digit).resize((56, 56), Image.LANCZOS)
    decoded = decode_upload(encode(grey.convert("CMYK"), "JPEG", quality=95))
    assert decoded.mode == "CMYK"
    assert correlation(to_model_input(decoded), to_model_input(grey)) > 0.98


def _render(digit: np.ndarray, mode: str) -> Image.Image:
    """The digit as dark strokes on white (or transparent), in the given PIL mode."""
    dark = Image.fromarray(255 - digit)
    if mode in ("LA", "RGBA"):
        # black everywhere, the strokes given only by the alpha channel
        black = Image.new(mode[:-1], dark.size, 0)
        black.putalpha(Image.fromarray(digit))
        return black
    if mode == "P":
        return dark.convert("RGB").convert("P", palette=Image.ADAPTIVE, colors=64)
    if mode == "I":
        return Image.fromarray((255 - digit.astype(np.int32)) * 256)
    if mode == "F":
        return Image.fromarray((255 - digit.astype(np.float32)) / 255)
    return dark.convert(mode)


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I", "F"])
def test_every_mode(digit, reference, mode):
    image = _render(digit, mode)
    assert image.mode == mode
    threshold = 0.75 if mode == "1" else 0.95  # "1" is a dithered rendering of the digit
    assert correlation(to_model_input(image), reference) > threshold


def test_transparent_png_with_palette(digit, reference):
    rgba = _render(digit, "RGBA")
    decoded = decode_upload(encode(rgba, "PNG"))
    assert correlation(to_model_input(decoded), reference) > 0.95


def test_exif_orientation_is_applied(digit, reference):
    upright = Image.fromarray(255 - digit).convert("RGB").resize((84, 84), Image.LANCZOS)
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # orientation 6: display rotated 90° clockwise
    exif = Image.Exif()
    exif[0x0112] = 6
    decoded = decode_upload(encode(stored, "JPEG", quality=95, exif=exif))
    assert correlation(to_model_input(decoded), reference) > 0.9


def test_aspect_kept_box_and_frame_shape():
    bar = np.full((300, 120), 255, np.uint8)
    bar[50:250, 50:70] = 0  # a dark upright bar, 200 × 20 on white
    result = to_model_input(Image.fromarray(bar))
    rows, cols = np.flatnonzero(result.any(axis=1)), np.flatnonzero(result.any(axis=0))
    assert rows[-1] - rows[0] + 1 == 20       # the long side fills the 20-pixel box
    assert 1 <= cols[-1] - cols[0] + 1 <= 4   # the short side keeps the 10:1 aspect ratio
    bigger = to_model_input(Image.fromarray(bar), shape=(56, 42))
    assert bigger.shape == (56, 42)
    assert np.flatnonzero(bigger.any(axis=1)).size == 40  # 20/28 of 56
    row, col = centre_of_mass(bigger)
    assert abs(row - 28) <= 1 and abs(col - 21) <= 1


def test_large_picture(digit, reference):
    canvas = Image.new("L", (2400, 1800), 230)  # grey paper
    strokes = Image.fromarray(255 - digit).resize((900, 900), Image.LANCZOS)
    canvas.paste(strokes.point(lambda v: v * 230 // 255), (300, 500))
    assert correlation(to_model_input(canvas), reference) > 0.9


@pytest.mark.parametrize("image", [
    Image.new("RGB", (50, 40), "white"),
    Image.new("L", (28, 28), 0),
    Image.new("RGBA", (30, 30), (0, 0, 0, 0)),
    Image.fromarray(np.random.default_rng(0).integers(250, 256, (64, 64), dtype=np.uint8)),
], ids=["white", "black", "transparent", "faint-noise"])
def test_blank_images_are_refused(image):
    with pytest.raises(ImageError, match="the image is blank: no strokes found") as caught:
        to_model_input(image)
    assert caught.value.kind == "invalid"


def test_blank_jpeg_upload():
    upload = decode_upload(encode(Image.new("RGB", (64, 48), "white"), "JPEG"))
    with pytest.raises(ImageError, match="blank"):
        to_model_input(upload)


# --- png_grid ------------------------------------------------------------------------------------

def test_png_grid_layout(digits):
    grid = png_grid(digits[:13], columns=5, padding=2)
    image = Image.open(io.BytesIO(grid))
    assert image.format == "PNG" and image.mode == "L"
    assert image.size == (2 + 5 * 30, 2 + 3 * 30)
    pixels = np.asarray(image)
    np.testing.assert_array_equal(pixels[2:30, 2:30], digits[0])
    np.testing.assert_array_equal(pixels[2 + 2 * 30:30 + 2 * 30, 2 + 2 * 30:30 + 2 * 30], digits[12])
    assert pixels[:2].max() == 0 and pixels[:, 30:32].max() == 0  # padding is black
    assert pixels[62:, 92:].max() == 0                              # the two empty cells
    assert png_grid(digits[:13], columns=5) == grid                 # same input, same bytes


def test_png_grid_default_columns(digits):
    assert Image.open(io.BytesIO(png_grid(digits[:16]))).size == (2 + 10 * 30, 2 + 2 * 30)
    assert Image.open(io.BytesIO(png_grid(digits[:3], padding=0))).size == (84, 28)


@pytest.mark.parametrize("images, columns", [
    (np.zeros((2, 28, 28), np.float32), None),
    (np.zeros((28, 28), np.uint8), None),
    (np.zeros((0, 28, 28), np.uint8), None),
    (np.zeros((2, 28, 28), np.uint8), 0),
])
def test_png_grid_bad_input(images, columns):
    with pytest.raises(ValueError):
        png_grid(images, columns=columns)
