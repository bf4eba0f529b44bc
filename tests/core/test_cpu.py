"""adgm_core/cpu.py: the CPU's name and flags from /proc/cpuinfo, and bf16 refused where the CPU
has no native bfloat16 (the CLI exits with the reason; the API's 422 is in tests/api/routes/test_jobs.py,
the worker's failed job in tests/worker/test_training.py)."""

import pytest
from typer.testing import CliRunner

from adgm_core import cpu
from adgm_core.cli import app

X86 = """processor	: 0
vendor_id	: AuthenticAMD
model name	: AMD EPYC 7B13
flags		: fpu sse sse2 ssse3 sse4_1 sse4_2 avx avx2 fma f16c

processor	: 1
model name	: AMD EPYC 7B13
flags		: fpu sse sse2 ssse3 sse4_1 sse4_2 avx avx2 fma f16c
"""
ARM = """processor	: 0
BogoMIPS	: 50.00
Features	: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics sve bf16 i8mm
CPU implementer	: 0x41
"""


def read(tmp_path, text):
    path = tmp_path / "cpuinfo"
    path.write_text(text)
    return cpu.cpu_info.__wrapped__(path)  # uncached: the cached one is this machine's


def test_name_and_flags_of_an_avx2_cpu_without_bf16(tmp_path):
    info = read(tmp_path, X86)
    assert info.name == "AMD EPYC 7B13"
    assert {"avx2", "fma", "sse4_2"} <= info.flags and "avx512_bf16" not in info.flags
    assert info.native_bf16 is False
    shown = info.as_dict()
    assert shown["name"] == "AMD EPYC 7B13" and shown["native_bf16"] is False
    assert shown["vector_flags"] == ["avx", "avx2", "f16c", "fma", "sse", "sse2", "sse4_1", "sse4_2", "ssse3"]


def test_an_arm_cpu_with_bf16_and_an_unreadable_one(tmp_path):
    arm = read(tmp_path, ARM)
    assert arm.native_bf16 is True and "bf16" in arm.as_dict()["vector_flags"]
    missing = cpu.cpu_info.__wrapped__(tmp_path / "absent")
    assert missing.flags == frozenset() and missing.native_bf16 is None and missing.name


def test_this_machine_is_read():
    info = cpu.cpu_info()
    assert info.name and info.as_dict()["logical_cpus"] >= 1


def test_bf16_is_refused_only_on_a_cpu_without_it(fake_cpu):
    fake_cpu("avx2", "fma")
    with pytest.raises(cpu.NoNativeBf16, match=r"Fake CPU.*no native bfloat16.*avx512_bf16, amx_bf16"):
        cpu.check_bf16(True, "cpu")
    cpu.check_bf16(False, "cpu")  # float32: nothing to refuse
    cpu.check_bf16(True, "cuda")  # a GPU has its own bf16 units
    fake_cpu("avx2", "avx512_bf16")
    cpu.check_bf16(True, "cpu")
    fake_cpu()  # flags unknown (not Linux): no claim either way
    cpu.check_bf16(True, "cpu")


def test_the_cli_refuses_bf16_on_such_a_cpu(fake_cpu, tmp_path):
    fake_cpu("avx2")
    result = CliRunner().invoke(app, ["train", "--epochs", "1", "--bf16", "--device", "cpu", "--out",
                                      str(tmp_path / "model")])
    assert result.exit_code == 2
    output = " ".join(result.output.split())  # rich wraps the message at the terminal's width
    assert "no native bfloat16" in output and "--no-bf16" in output
    assert not (tmp_path / "model").exists()
