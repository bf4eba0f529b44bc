"""torch's CPU normal draws, reproduced in numpy, so that a process without torch draws the same
noise as `torch.randn(shape, generator=torch.Generator().manual_seed(seed))`.

torch's CPU generator is a 32-bit Mersenne Twister seeded as numpy's legacy `RandomState` seeds
it. A float32 draw of 16 values or more takes one 24-bit uniform per value, then turns each block
of 16 into normals by Box-Muller (u1 from the block's first half, u2 from its second); when the
size is not a multiple of 16, 16 new uniforms redo the last 16 values. A draw of fewer than 16
values takes double-precision Box-Muller pairs from 53-bit uniforms, the second of each pair kept
for the next value (also across draws from the same generator). torch computes the float32 path
with AVX2 approximations of log, sin and cos, so the values agree to about 2 float32 ulps, not to
the bit (tests/core/test_torch_random.py compares them with torch).
"""

from __future__ import annotations

import math

import numpy as np

_BLOCK = 16


class TorchNormals:
    """A stream of standard-normal float32 draws, as from one seeded `torch.Generator` on the CPU."""

    def __init__(self, seed: int):
        self._mersenne = np.random.RandomState(seed & 0xFFFFFFFF)
        self._next_double: float | None = None  # the second value of a double Box-Muller pair

    def _words(self, n: int) -> np.ndarray:
        return self._mersenne.randint(0, 2**32, size=n, dtype=np.uint32)

    def _uniform_float(self, n: int) -> np.ndarray:
        return ((self._words(n) & np.uint32((1 << 24) - 1)).astype(np.float64) * 2.0**-24).astype(np.float32)

    def _uniform_double(self) -> float:
        high, low = (int(word) for word in self._words(2))
        return (((high << 32) | low) & ((1 << 53) - 1)) * 2.0**-53

    @staticmethod
    def _box_muller_blocks(uniforms: np.ndarray) -> np.ndarray:
        blocks = uniforms.reshape(-1, 2, _BLOCK // 2)
        radius = np.sqrt(np.float32(-2.0) * np.log(np.float32(1.0) - blocks[:, 0]))
        theta = np.float32(2.0 * math.pi) * blocks[:, 1]
        return np.stack([radius * np.cos(theta), radius * np.sin(theta)], axis=1).reshape(-1)

    def randn(self, *shape: int) -> np.ndarray:
        size = math.prod(shape)
        if size < _BLOCK:
            return np.array([self._double_normal() for _ in range(size)], np.float32).reshape(shape)
        out = self._uniform_float(size)
        whole = size - size % _BLOCK
        out[:whole] = self._box_muller_blocks(out[:whole])
        if size % _BLOCK:
            out[size - _BLOCK:] = self._box_muller_blocks(self._uniform_float(_BLOCK))
        return out.reshape(shape)

    def _double_normal(self) -> float:
        if self._next_double is not None:
            value, self._next_double = self._next_double, None
            return value
        u1, u2 = self._uniform_double(), self._uniform_double()
        radius = math.sqrt(-2.0 * math.log1p(-u2))
        theta = 2.0 * math.pi * u1
        self._next_double = radius * math.sin(theta)
        return radius * math.cos(theta)
