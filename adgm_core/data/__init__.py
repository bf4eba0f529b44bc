"""Data sets for the ADGM: MNIST's IDX files, the offline digit set, custom .npz files, and the
balanced semi-supervised split. Images are uint8 N×H×W with 255 = ink; label −1 = unlabelled."""

from .errors import DataError
from .idx import load_mnist, read_idx
from .npz import load_npz
from .sets import ImageSet, SemiSupervisedSplit
from .sources import load_builtin, load_offline_digits
from .split import labelled_split, semi_supervised_split

__all__ = [
    "DataError",
    "ImageSet",
    "SemiSupervisedSplit",
    "labelled_split",
    "load_builtin",
    "load_mnist",
    "load_npz",
    "load_offline_digits",
    "read_idx",
    "semi_supervised_split",
]
