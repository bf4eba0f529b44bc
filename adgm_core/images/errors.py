"""The one exception type of the images package."""

from typing import Literal

ImageErrorKind = Literal["unsupported", "too_large", "invalid"]


class ImageError(ValueError):
    """An upload that is not a usable image; `kind` lets the service answer 415, 413 or 422."""

    def __init__(self, kind: ImageErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
