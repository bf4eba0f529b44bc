"""Images in and out of the service: decoding uploads safely, MNIST-style preprocessing, PNG grids."""

from .decode import decode_upload, header_size
from .errors import ImageError
from .grid import png_grid
from .preprocess import to_model_input

__all__ = ["ImageError", "decode_upload", "header_size", "png_grid", "to_model_input"]
