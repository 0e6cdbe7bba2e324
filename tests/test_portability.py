"""The AVX2 half of the suite, run on any x86 machine: the hardware-dependent tests again, in a child
process whose libraries compute as on a CPU without AVX-512 (an AMD Zen 3, an Intel Haswell).

Three environment variables limit what the libraries use, each read when the library starts:

* ``ONEDNN_MAX_CPU_ISA=AVX2``: oneDNN (PyTorch's bf16 and packed products, and CTranslate2's int8
  products) uses its AVX2 kernels only. PyTorch then reports no native bf16
  (``torch.ops.mkldnn._is_mkldnn_bf16_supported()`` is False), its bf16 products run in the slow
  reference path (about 1 GFLOP/s against 170 in fp32 on the development machine) and the packed
  bf16 operators refuse with the same error an AVX2-only CPU gives;
* ``ATEN_CPU_CAPABILITY=avx2``: PyTorch's own kernels are the AVX2 ones, and
  ``torch.backends.cpu.get_cpu_capability()`` says ``AVX2``;
* ``MKL_ENABLE_INSTRUCTIONS=AVX2``: MKL's fp32 products use AVX2.

On a real AVX2 machine the child runs what the parent runs. The whole suite can be run this way:
``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 python -m pytest -q``
(the README, "Tests").
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

AVX2 = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
"""The environment of a process that computes as an AVX2-only CPU does."""

_CHILD = "SEQLAB_TEST_AVX2_CHILD"

HARDWARE_TESTS = [
    "tests/test_portability.py::test_this_process_computes_as_an_avx2_only_cpu",
    "tests/test_precision.py",
    "tests/nn/test_linear.py",
    "tests/nn/test_attention.py",
    "tests/export/test_ctranslate2.py",
    "tests/export/test_int8.py",
    "tests/test_api.py",
    "tests/test_cli.py::test_translate_bf16_without_native_bf16_runs_after_one_warning",
]
"""Every test whose path depends on the CPU's bf16 and int8 arithmetic."""

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(os.environ.get(_CHILD) is None, reason="runs only in the AVX2 child process of the test below")
def test_this_process_computes_as_an_avx2_only_cpu():
    from seqlab.precision import native_bf16, resolve_precision

    assert torch.backends.cpu.get_cpu_capability() == "AVX2"
    assert not native_bf16("cpu")
    assert resolve_precision("auto") == "fp32"
    with pytest.raises(RuntimeError, match="bf16 path needs the cpu support"):
        torch.ops.mkldnn._reorder_linear_weight(torch.randn(8, 4).bfloat16(), None)


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="AVX2 is an x86 instruction set")
@pytest.mark.skipif(os.environ.get(_CHILD) is not None, reason="this is the AVX2 child already")
def test_the_hardware_dependent_tests_pass_on_an_avx2_only_cpu(tmp_path):
    env = {**os.environ, **AVX2, _CHILD: "1"}
    child = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "--basetemp", str(tmp_path / "t"),
         *HARDWARE_TESTS],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    tail = child.stdout[-4000:] + child.stderr[-2000:]
    assert child.returncode == 0, tail
    passed = re.search(r"(\d+) passed", child.stdout)
    assert passed and int(passed.group(1)) >= 60, tail
    assert "runs only in the AVX2 child" not in child.stdout, tail  # the check of the emulation ran
