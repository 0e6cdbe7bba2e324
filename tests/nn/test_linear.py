"""seqlab.nn.Linear: packed bf16 weights for decoding, packed only where the hardware says they work."""

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

import seqlab.nn.linear as linear_module
from seqlab.nn.linear import Linear, PackedWeight, pack_for_decoding, packed_linear_works
from seqlab.precision import cpu_capability

needs_packed = pytest.mark.skipif(
    not packed_linear_works(),
    reason=f"this CPU (capability {cpu_capability()}) has no native bf16 or no working oneDNN packed linear",
)


def _layer(bias=True):
    torch.manual_seed(0)
    return Linear(24, 40, bias=bias)


def _count_packed_calls(monkeypatch) -> list:
    calls = []
    real = PackedWeight.__call__
    monkeypatch.setattr(PackedWeight, "__call__", lambda self, x: calls.append(1) or real(self, x))
    return calls


@needs_packed
@pytest.mark.parametrize("bias", [True, False])
def test_packed_path_under_bf16_autocast_equals_f_linear(monkeypatch, bias):
    layer = _layer(bias)
    assert pack_for_decoding(layer, enabled=True)
    calls = _count_packed_calls(monkeypatch)
    x = torch.randn(3, 5, 24)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        packed = layer(x)
        reference = F.linear(x, layer.weight, layer.bias)
    assert calls == [1]  # the packed path ran
    assert packed.dtype == reference.dtype == torch.bfloat16 and packed.shape == (3, 5, 40)
    torch.testing.assert_close(packed.float(), reference.float(), rtol=0, atol=0)


@needs_packed
def test_packing_again_follows_updated_weights_and_disabling_drops_the_pack():
    layer = _layer()
    x = torch.randn(4, 24)
    pack_for_decoding(layer, enabled=True)
    with torch.no_grad():
        layer.weight.mul_(2.0)  # e.g. a training step: the pack is a snapshot, so pack again
    pack_for_decoding(layer, enabled=True)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        torch.testing.assert_close(layer(x).float(), F.linear(x, layer.weight, layer.bias).float(), rtol=0, atol=0)
    assert not pack_for_decoding(layer, enabled=False) and layer.packed is None


def test_training_and_fp32_use_the_plain_product_even_when_packed(monkeypatch):
    layer = _layer()
    pack_for_decoding(layer, enabled=True)  # packs where it can; the paths below never use it
    calls = _count_packed_calls(monkeypatch)
    x = torch.randn(2, 24, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(x)  # autograd on: nn.Linear's path, differentiable
    y.float().sum().backward()
    assert x.grad is not None
    with torch.no_grad():
        torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias), rtol=0, atol=0)
    assert calls == []
    assert list(layer.state_dict()) == ["weight", "bias"]  # checkpoints are those of nn.Linear


def test_forward_writes_nothing_into_the_module():
    # several threads may decode with one model: forward only reads
    layer = _layer()
    pack_for_decoding(layer, enabled=True)
    before = dict(vars(layer))
    x = torch.randn(2, 24)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        layer(x)
    with torch.no_grad():
        layer(x)
    assert vars(layer).keys() == before.keys() and all(vars(layer)[k] is v for k, v in before.items())


@pytest.mark.parametrize("native", [True, False])
def test_without_working_packed_operators_nothing_is_packed_and_bf16_still_runs(monkeypatch, cpu_bf16, native):
    # An AVX2 CPU (native False), or native bf16 with operators that a PyTorch version removed or
    # changed (native True, probe failing): plain F.linear under autocast, no crash.
    cpu_bf16(native)
    monkeypatch.setattr(linear_module, "_packed_ops_work", lambda: False)
    layer = _layer()
    assert not packed_linear_works()
    assert not pack_for_decoding(layer, enabled=True) and layer.packed is None
    x = torch.randn(2, 24)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        got = layer(x)
        want = F.linear(x, layer.weight, layer.bias)
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), want.float(), rtol=0, atol=0)


def _refuse(*args):
    raise RuntimeError("mkldnn_reorder_linear_weight: bf16 path needs the cpu support avx_ne_convert or avx512bw, "
                       "avx512vl and avx512dq")


@pytest.mark.parametrize("ops", [
    SimpleNamespace(),  # the private operators are gone
    SimpleNamespace(_reorder_linear_weight=_refuse, _linear_pointwise=_refuse),  # an AVX2 CPU refuses
    SimpleNamespace(_reorder_linear_weight=lambda w: w, _linear_pointwise=lambda x, w, b: x),  # new signature
    SimpleNamespace(_reorder_linear_weight=lambda w: w,  # runs, but computes something else
                    _linear_pointwise=lambda x, w, b, *attr: torch.zeros(x.size(0), w.size(0), dtype=x.dtype)),
], ids=["missing", "refusing", "other-signature", "wrong-result"])
def test_probe_rejects_operators_that_are_missing_refuse_or_compute_something_else(ops):
    assert not linear_module._probe(ops)

