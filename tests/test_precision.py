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
    with pytest.raises(SeqlabError, match="auto, fp32, bf16, fp16, got 'fp8'"):
        resolve_precision("fp8")
    with pytest.raises(SeqlabError, match="resolved precision"):
        autocast_context("auto")


@pytest.mark.parametrize("name, dtype", [("fp32", torch.float32), ("bf16", torch.bfloat16),
                                         ("fp16", torch.float16)])
def test_autocast_context_runs_products_at_the_resolved_precision(name, dtype):
    a, b = torch.randn(4, 8), torch.randn(8, 3)
    with autocast_context(name, "cpu"):
        product = a @ b
    assert product.dtype == dtype
    torch.testing.assert_close(product.float(), a @ b, rtol=0, atol=0.1)


@pytest.mark.parametrize("native", [True, False])
def test_auto_on_a_gpu_is_bf16_where_native_else_fp16_with_a_loss_scaler(monkeypatch, native):
    monkeypatch.setattr(precision, "_cuda_bf16", lambda: native)
    resolved = resolve_precision("auto", "cuda")
    assert resolved == ("bf16" if native else "fp16")
    assert precision.grad_scaler(resolved, "cpu").is_enabled() is (not native)


def test_fp16_on_the_cpu_warns_and_trains_with_a_scaler_that_resumes_exactly(tmp_path):
    from safetensors.torch import load_file

    from seqlab.training.trainer import train
    from tests.training.test_trainer import tiny_config

    quiet = dict(progress=False, echo=lambda *_: None)
    cfg = tiny_config(tmp_path, precision="fp16", schedule="inverse_sqrt")
    with pytest.warns(SlowPrecisionWarning, match="fp16 on the CPU"):
        train(cfg, tmp_path / "straight", **quiet)
        train(tiny_config(tmp_path, precision="fp16", schedule="inverse_sqrt", max_steps=6), tmp_path / "stopped",
              **quiet)
        train(None, tmp_path / "stopped", resume=True, overrides=["train.max_steps=12"], **quiet)
    a = load_file(tmp_path / "straight/checkpoints/last/model.safetensors")
    b = load_file(tmp_path / "stopped/checkpoints/last/model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    meta = (tmp_path / "stopped/checkpoints/last/trainer.json").read_text()
    assert '"scaler"' in meta  # the loss scale S and its growth tracker are part of the resumed state
