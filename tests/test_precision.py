"""seqlab.precision: auto resolves to bf16 exactly where the hardware computes it natively."""

import warnings
from types import SimpleNamespace

import pytest
import torch

import seqlab.precision as precision
from seqlab.errors import SeqlabError
from seqlab.precision import SlowPrecisionWarning, autocast_context, native_bf16, resolve_precision


@pytest.mark.parametrize("native", [True, False])
def test_auto_is_bf16_exactly_where_bf16_is_native_and_explicit_choices_stay(cpu_bf16, native):
    cpu_bf16(native)
    assert native_bf16("cpu") is native
    assert resolve_precision("auto", "cpu") == ("bf16" if native else "fp32")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # fp32 never warns, nor bf16 where it is native
        assert resolve_precision("fp32", "cpu") == "fp32"
        if native:
            assert resolve_precision("bf16", "cpu") == "bf16"


def test_bf16_without_native_bf16_runs_with_a_warning_naming_the_capability(cpu_bf16):
    cpu_bf16(False)
    with pytest.warns(SlowPrecisionWarning) as caught:
        assert resolve_precision("bf16", "cpu") == "bf16"
    message = str(caught[0].message)
    assert f"capability {torch.backends.cpu.get_cpu_capability()}" in message
    assert "much slower than fp32" in message


def test_a_missing_or_failing_oneDNN_query_means_no_native_bf16(monkeypatch):
    def fail():
        raise RuntimeError("no oneDNN in this build")

    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", fail)
    assert precision._cpu_bf16.__wrapped__() is False
    monkeypatch.setattr(torch.ops, "mkldnn", SimpleNamespace())  # a PyTorch without the operator
    assert precision._cpu_bf16.__wrapped__() is False


def test_devices_without_a_bf16_query_are_not_native():
    assert not native_bf16("meta")
    assert resolve_precision("auto", "meta") == "fp32"


def test_unknown_precision_is_an_error_naming_the_choices():
    with pytest.raises(SeqlabError, match="auto, fp32, bf16, got 'fp16'"):
        resolve_precision("fp16")
    with pytest.raises(SeqlabError, match="resolved precision"):
        autocast_context("auto")


@pytest.mark.parametrize("name, dtype", [("fp32", torch.float32), ("bf16", torch.bfloat16)])
def test_autocast_context_runs_products_at_the_resolved_precision(name, dtype):
    a, b = torch.randn(4, 8), torch.randn(8, 3)
    with autocast_context(name, "cpu"):
        product = a @ b
    assert product.dtype == dtype
    torch.testing.assert_close(product.float(), a @ b, rtol=0, atol=0.1)
