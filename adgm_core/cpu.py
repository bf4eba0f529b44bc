"""The CPU this process runs on: its name and flags (from Linux's /proc/cpuinfo), and whether it
computes bfloat16 natively.

Without native bfloat16 (x86's `avx512_bf16` or `amx_bf16`, Arm's `bf16`), bf16 autocast on the CPU
is emulated and several times slower than float32 (bench/throughput.py measured 0.17× on an AVX2
EPYC), so `check_bf16` refuses it there; the API answers 422 and the CLI exits with the reason.
Benchmarks print `cpu_info().as_dict()` beside their figures.
"""

from __future__ import annotations

import functools
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")  # x86 AVX-512 and AMX; Arm's feature is "bf16"
VECTOR_FLAG_PREFIXES = ("sse", "ssse", "avx", "amx", "fma", "f16c", "asimd", "sve", "bf16", "i8mm")


@dataclass(frozen=True)
class CpuInfo:
    name: str
    flags: frozenset[str]  # empty where they cannot be read (not Linux)

    @property
    def native_bf16(self) -> bool | None:
        """True or False from the flags; None when the flags are unknown."""
        if not self.flags:
            return None
        return any(flag in self.flags for flag in NATIVE_BF16_FLAGS)

    def as_dict(self) -> dict:
        """Name, logical CPUs, the vector-unit flags (SSE, AVX, AMX, FMA…) and native bf16, for a benchmark's output."""
        vector = sorted(flag for flag in self.flags if flag.startswith(VECTOR_FLAG_PREFIXES))
        return {"name": self.name, "logical_cpus": os.cpu_count(), "vector_flags": vector,
                "native_bf16": self.native_bf16}


@functools.cache
def cpu_info(cpuinfo: Path = Path("/proc/cpuinfo")) -> CpuInfo:
    """The first processor's model name and flags from `cpuinfo`."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return CpuInfo(platform.processor() or platform.machine() or "unknown", frozenset())
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break  # the first processor's block is enough
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    name = fields.get("model name") or fields.get("Hardware") or platform.processor() or platform.machine()
    flags = fields.get("flags") or fields.get("Features") or ""
    return CpuInfo(name or "unknown", frozenset(flags.split()))


class NoNativeBf16(ValueError):
    """bf16 asked for where training runs on a CPU without native bfloat16."""


def check_bf16(bf16: bool, device: str | torch.device) -> None:
    """Raises NoNativeBf16 when `bf16` is asked for and `device` ("auto" as the trainer resolves
    it) is a CPU whose flags show no native bfloat16. A GPU, or a CPU whose flags cannot be read,
    passes."""
    if not bf16:
        return
    from adgm_core.trainer import resolve_device

    if resolve_device(str(device)).type != "cpu":
        return
    cpu = cpu_info()
    if cpu.native_bf16 is False:
        raise NoNativeBf16(
            f"bf16 is refused: training would run on the CPU ({cpu.name}), which has no native bfloat16 "
            f"(none of {', '.join(NATIVE_BF16_FLAGS)} among its flags), so bf16 autocast would be several "
            "times slower than float32. Train without bf16 (\"bf16\": false, or --no-bf16), or on a GPU."
        )
