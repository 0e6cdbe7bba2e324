"""seqlab.nn.Linear: the packed bf16 decoding path equals nn.Linear's."""

import pytest
import torch
import torch.nn.functional as F

from seqlab.nn.linear import Linear, packed_linear_available

needs_packed = pytest.mark.skipif(not packed_linear_available(), reason="no oneDNN packed linear in this build")


def _layer(bias=True):
    torch.manual_seed(0)
    return Linear(24, 40, bias=bias)


@needs_packed
@pytest.mark.parametrize("bias", [True, False])
def test_packed_path_under_bf16_autocast_equals_f_linear(bias):
    layer = _layer(bias)
    x = torch.randn(3, 5, 24)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        packed = layer(x)
        reference = F.linear(x, layer.weight, layer.bias)
    assert layer._packed._key is not None  # the packed path ran
    assert packed.dtype == reference.dtype == torch.bfloat16 and packed.shape == (3, 5, 40)
    torch.testing.assert_close(packed.float(), reference.float(), rtol=0, atol=0)


@needs_packed
def test_packed_weight_follows_in_place_updates_and_replacement():
    layer = _layer()
    x = torch.randn(4, 24)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        layer(x)
        layer.weight.mul_(2.0)  # an ordinary in-place update (moves the version counter)
        after_update = layer(x)
        torch.testing.assert_close(after_update.float(), F.linear(x, layer.weight, layer.bias).float(), rtol=0, atol=0)
        layer.weight = torch.nn.Parameter(torch.randn(40, 24))  # tying or loading replaces it
        torch.testing.assert_close(layer(x).float(), F.linear(x, layer.weight, layer.bias).float(), rtol=0, atol=0)


def test_training_and_fp32_use_the_plain_product():
    layer = _layer()
    x = torch.randn(2, 24, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(x)  # autograd on: nn.Linear's path, differentiable
    y.float().sum().backward()
    assert x.grad is not None and layer._packed._key is None
    with torch.no_grad():
        torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias), rtol=0, atol=0)
    assert layer._packed._key is None
    assert list(layer.state_dict()) == ["weight", "bias"]  # checkpoints are those of nn.Linear


@needs_packed
def test_packed_path_under_inference_mode_and_stacked_attention_weights():
    # decoding runs under inference_mode: cached tensors made there have no version counter
    from seqlab.nn.attention import MultiHeadAttention

    torch.manual_seed(2)
    layer, mha = _layer(), MultiHeadAttention(16, 4).eval()
    x, h = torch.randn(2, 24), torch.randn(3, 1, 16)
    with torch.no_grad():
        reference = F.linear(x, layer.weight, layer.bias)
        separate = mha(h, h.clone(), h.clone())[0]
    for _ in range(2):  # the second call reuses the packed weights
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            torch.testing.assert_close(layer(x).float(), reference, rtol=0, atol=5e-2)
            torch.testing.assert_close(mha(h, h, h)[0].float(), separate, rtol=0, atol=5e-2)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):  # caches made in inference mode
        torch.testing.assert_close(mha(h, h, h)[0].float(), separate, rtol=0, atol=5e-2)


@needs_packed
def test_packed_weight_follows_a_fused_optimizer_step():
    # torch.optim.Adam(fused=True) rewrites parameters without moving their version counters
    layer = _layer()
    x = torch.randn(4, 24)
    opt = torch.optim.Adam(layer.parameters(), lr=0.1, fused=True)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        layer(x)  # builds the packed weight
    versions = (layer.weight._version, layer.bias._version)
    layer(x).pow(2).sum().backward()
    opt.step()
    assert (layer.weight._version, layer.bias._version) == versions  # what makes this test necessary
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        torch.testing.assert_close(layer(x).float(), F.linear(x, layer.weight, layer.bias).float(), rtol=0, atol=0)
