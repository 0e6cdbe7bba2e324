"""seqlab.nn.Linear: packed fp32/bf16 weights for decoding, packed only where the hardware says they work."""

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


needs_packed_fp32 = pytest.mark.skipif(
    not packed_linear_works("fp32"),
    reason=f"this CPU (capability {cpu_capability()}) or PyTorch has no working oneDNN packed fp32 linear",
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
    assert pack_for_decoding(layer, precision="bf16")
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
    pack_for_decoding(layer, precision="bf16")
    with torch.no_grad():
        layer.weight.mul_(2.0)  # e.g. a training step: the pack is a snapshot, so pack again
    pack_for_decoding(layer, precision="bf16")
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        torch.testing.assert_close(layer(x).float(), F.linear(x, layer.weight, layer.bias).float(), rtol=0, atol=0)
    assert not pack_for_decoding(layer, precision=None) and layer.packed is None


@needs_packed_fp32
@pytest.mark.parametrize("bias", [True, False])
def test_packed_fp32_path_equals_f_linear_to_rounding(monkeypatch, bias):
    layer = _layer(bias)
    assert pack_for_decoding(layer, precision="fp32") and layer.packed.dtype == torch.float32
    calls = _count_packed_calls(monkeypatch)
    x = torch.randn(3, 5, 24)
    with torch.inference_mode():
        packed = layer(x)
        reference = F.linear(x, layer.weight, layer.bias)
    assert calls == [1]
    assert packed.dtype == torch.float32 and packed.shape == (3, 5, 40)
    torch.testing.assert_close(packed, reference, rtol=1e-5, atol=1e-5)
    with torch.no_grad():  # a non-contiguous input (a transposed view) takes the packed path too
        torch.testing.assert_close(layer(x.transpose(0, 1)), reference.transpose(0, 1), rtol=1e-5, atol=1e-5)
    x.requires_grad_(True)
    layer(x).sum().backward()  # autograd on (training): nn.Linear's path
    assert calls == [1, 1] and x.grad is not None


@needs_packed_fp32
def test_weights_packed_for_one_precision_are_not_used_by_the_other(monkeypatch):
    layer = _layer()
    pack_for_decoding(layer, precision="fp32")
    calls = _count_packed_calls(monkeypatch)
    x = torch.randn(4, 24)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        got = layer(x)  # a bf16 product: the fp32 pack does not apply
        want = F.linear(x, layer.weight, layer.bias)
    assert calls == [] and got.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), want.float(), rtol=0, atol=0)


def test_unknown_precisions_pack_nothing():
    layer = _layer()
    for precision in (None, "int8", "fp16"):
        assert not pack_for_decoding(layer, precision=precision) and layer.packed is None


def test_training_and_products_in_another_dtype_use_the_plain_product_even_when_packed(monkeypatch):
    layer = _layer()
    pack_for_decoding(layer, precision="bf16")  # packs where it can; the paths below never use it
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
    pack_for_decoding(layer, precision="bf16")
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
    monkeypatch.setattr(linear_module, "_packed_ops_work", lambda dtype=None: False)
    layer = _layer()
    assert not packed_linear_works()
    assert not pack_for_decoding(layer, precision="bf16") and layer.packed is None
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
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32], ids=["bf16", "fp32"])
def test_probe_rejects_operators_that_are_missing_refuse_or_compute_something_else(ops, dtype):
    assert not linear_module._probe(ops, dtype)


def test_without_working_fp32_operators_nothing_is_packed_and_fp32_runs_plain(monkeypatch):
    monkeypatch.setattr(linear_module, "_packed_ops_work", lambda dtype=None: False)
    layer = _layer()
    assert not packed_linear_works("fp32")
    assert not pack_for_decoding(layer, precision="fp32") and layer.packed is None
    x = torch.randn(2, 24)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias), rtol=0, atol=0)



@needs_packed_fp32
def test_small_fp32_weights_stay_unpacked_where_packing_costs_more_than_it_saves(monkeypatch):
    from seqlab.nn.attention import MultiHeadAttention

    monkeypatch.setattr(linear_module, "FP32_PACK_MIN_ELEMENTS", 2 * 256 * 256)  # the shipped threshold
    square, wide = Linear(256, 256), Linear(256, 768)  # a d x d projection; [W_Q; W_K; W_V]
    attention = MultiHeadAttention(256, 4)
    model = torch.nn.ModuleList([square, wide, attention])
    assert pack_for_decoding(model, precision="fp32")
    assert square.packed is None and wide.packed is not None
    assert attention.W_qkv.packed is not None and attention.W_o.packed is None
    assert attention._packed_q is None and attention._packed_kv is not None  # W_Q is d x d, [W_K; W_V] 2d x d
    x = torch.randn(5, 256)
    with torch.inference_mode():
        torch.testing.assert_close(square(x), torch.nn.functional.linear(x, square.weight, square.bias))
    if packed_linear_works("bf16"):
        pack_for_decoding(model, precision="bf16")
        assert square.packed is not None and attention._packed_q is not None  # bf16 packs every size
