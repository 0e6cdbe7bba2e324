"""The gradient study's instrument: ||dL/dh_t|| from the recorded states of explicit cells."""

import json

import pytest
import torch

from seqlab.nn.cells import ExplicitRecurrent
from seqlab.studies.gradients import gradient_profile


def test_profile_equals_autograd_on_the_inputs_of_a_linear_rnn():
    # With W_x = I, h_t = tanh(h_{t-1} W_h^T + x_t + b): dL/dx_t = dL/dh_t * tanh'(a_t), so the
    # recorded dL/dh_T can be checked against the gradient autograd gives the last input.
    torch.manual_seed(0)
    layer = ExplicitRecurrent("rnn", 4, 4)
    with torch.no_grad():
        layer.weight_ih_l0.copy_(torch.eye(4))
    layer.record_states = True
    x = torch.randn(2, 5, 4, requires_grad=True)
    layer(x)
    states = layer.recorded_states[0][0]
    for h in states:
        h.retain_grad()
    states[-1].sum().backward()
    h_T = states[-1]
    assert torch.allclose(x.grad[:, -1], h_T.grad * (1 - h_T.detach() ** 2), atol=1e-6)


def test_tanh_rnn_gradient_vanishes_under_small_init():
    profile = gradient_profile("rnn", "tanh", "small", T=40, H=32)
    assert profile[0] < 1e-3 * profile[-1]


def test_relu_rnn_gradient_explodes_under_he_init():
    profile = gradient_profile("rnn", "relu", "he", T=40, H=32)
    assert profile[0] > 1e2 * profile[-1]


def test_lstm_keeps_more_gradient_than_tanh_rnn():
    lstm = gradient_profile("lstm", "tanh", "small", T=40, H=32)
    rnn = gradient_profile("rnn", "tanh", "small", T=40, H=32)
    assert lstm[0] / lstm[-1] > 1e3 * rnn[0] / rnn[-1]


@pytest.mark.slow
def test_quick_study_writes_its_report(tmp_path):
    from seqlab.studies import run_study

    report = run_study("gradients", tmp_path, quick=True)
    record = json.loads((tmp_path / "results.json").read_text())
    assert record["verdict"] == report.verdict and report.verdict in ("supported", "depends", "not supported")
    assert record["numbers"]["ratio_first_to_last"]["tanh RNN / small"] < 1e-3
    assert not record["numbers"]["training"]["clip_norm 1.0"]["diverged"]
    assert (tmp_path / "grad_norm_vs_t.png").is_file() and (tmp_path / "training.png").is_file()
    assert record["seconds"] == report.seconds > 0  # the study's wall-clock time, in JSON and report
    assert f"Wall-clock time: {report.seconds:.0f} s." in (tmp_path / "report.md").read_text()
