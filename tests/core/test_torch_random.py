"""adgm_core.torch_random against torch itself: the same normal draws, from the same seed, in the same
order, for the float32 block path (16 values or more, with and without a tail) and the double path
(fewer than 16, whose spare value carries to the next draw)."""

import numpy as np
import pytest
import torch

from adgm_core.torch_random import TorchNormals

SHAPES = [(16, 1, 32), (4, 1, 32), (10, 4, 1, 32), (3, 5), (1, 7), (5, 17), (2, 3), (100, 32), (1,), (33,)]


@pytest.mark.parametrize("seed", [0, 1, 12345, 2**31 + 5, 2**40 + 3])
def test_a_stream_of_draws_is_torchs(seed):
    generator, ours = torch.Generator().manual_seed(seed), TorchNormals(seed)
    for shape in SHAPES:
        expected = torch.randn(shape, generator=generator).numpy()
        drawn = ours.randn(*shape)
        assert drawn.shape == expected.shape and drawn.dtype == np.float32
        np.testing.assert_allclose(drawn, expected, rtol=0, atol=1e-6)  # torch's AVX2 log/sin/cos: ulps apart


def test_different_seeds_draw_differently():
    assert not np.allclose(TorchNormals(0).randn(64), TorchNormals(1).randn(64))
