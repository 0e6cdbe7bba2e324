"""Learning-rate and teacher-forcing schedules."""

import itertools
import json
import math

import pytest
import torch

from seqlab.config import TrainConfig
from seqlab.errors import ConfigError
from seqlab.training.schedule import (
    build_scheduler,
    constant,
    inverse_sqrt,
    noam,
    teacher_forcing_ratio,
    warmup_cosine,
    warmup_linear,
)


def _rates(scheduler, optimizer, n):
    """Learning rate used by each of the next n updates."""
    out = []
    for _ in range(n):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return out


def _optimizer(lr):
    return torch.optim.Adam([torch.nn.Parameter(torch.zeros(2))], lr=lr)


def test_noam_peaks_at_warmup_with_paper_value():
    d, w = 512, 4000
    peak = noam(w, d_model=d, warmup=w)
    assert peak == pytest.approx(d**-0.5 * w**-0.5)
    assert noam(w - 1, d_model=d, warmup=w) < peak > noam(w + 1, d_model=d, warmup=w)
    assert noam(10, d_model=d, warmup=w) == pytest.approx(d**-0.5 * 10 * w**-1.5)  # linear warmup
    assert noam(16000, d_model=d, warmup=w, factor=2.0) == pytest.approx(2.0 * d**-0.5 * 16000**-0.5)


def test_cosine_reaches_one_at_warmup_and_min_at_total():
    kw = dict(warmup=10, total=110, min_ratio=0.05)
    assert warmup_cosine(5, **kw) == pytest.approx(0.5)
    assert warmup_cosine(10, **kw) == pytest.approx(1.0)
    assert warmup_cosine(60, **kw) == pytest.approx(0.05 + 0.95 * 0.5)
    assert warmup_cosine(110, **kw) == pytest.approx(0.05)
    assert warmup_cosine(500, **kw) == pytest.approx(0.05)
    up = [warmup_cosine(s, **kw) for s in range(1, 11)]
    down = [warmup_cosine(s, **kw) for s in range(10, 111)]
    assert all(a < b for a, b in itertools.pairwise(up))
    assert all(a > b for a, b in itertools.pairwise(down))


def test_linear_falls_in_a_straight_line_to_min_at_total():
    kw = dict(warmup=0, total=100, min_ratio=0.004)  # word2vec: 0.025 -> 0.0001
    assert warmup_linear(0, **kw) == pytest.approx(1.0)
    assert warmup_linear(50, **kw) == pytest.approx(1.0 - 0.996 * 0.5)
    assert warmup_linear(100, **kw) == pytest.approx(0.004) == warmup_linear(150, **kw)
    assert warmup_linear(2, warmup=4, total=10, min_ratio=0.0) == pytest.approx(0.5)
    cfg = TrainConfig(schedule="linear", warmup_steps=0, max_steps=4, lr=0.1, min_lr_ratio=0.0)
    optimizer = _optimizer(0.1)
    assert _rates(build_scheduler(optimizer, cfg, 8), optimizer, 5) == pytest.approx([0.075, 0.05, 0.025, 0.0, 0.0])


def test_inverse_sqrt_and_constant():
    assert inverse_sqrt(2, warmup=4) == pytest.approx(0.5)
    assert inverse_sqrt(4, warmup=4) == pytest.approx(1.0)
    assert inverse_sqrt(16, warmup=4) == pytest.approx(0.5)
    assert inverse_sqrt(9, warmup=0) == pytest.approx(1 / 3)
    assert constant(1, warmup=4) == pytest.approx(0.25)
    assert constant(4, warmup=4) == constant(1000, warmup=4) == constant(1) == 1.0


def test_build_scheduler_noam_uses_lr_as_factor_and_counts_updates_from_one():
    cfg = TrainConfig(schedule="noam", lr=2.0, warmup_steps=4)
    opt = _optimizer(cfg.lr)
    rates = _rates(build_scheduler(opt, cfg, d_model=16), opt, 6)
    expected = [2.0 * noam(k, d_model=16, warmup=4) for k in range(1, 7)]
    assert rates == pytest.approx(expected)
    assert max(rates) == rates[3]  # the 4th update = warmup


def test_build_scheduler_cosine_first_and_last_update():
    cfg = TrainConfig(schedule="cosine", lr=1e-3, warmup_steps=2, max_steps=10, min_lr_ratio=0.1)
    opt = _optimizer(cfg.lr)
    rates = _rates(build_scheduler(opt, cfg, d_model=16), opt, 10)
    assert rates[0] == pytest.approx(0.5e-3)
    assert rates[1] == pytest.approx(1e-3)
    assert rates[9] == pytest.approx(1e-4)


def test_state_dict_round_trip_continues_identically():
    cfg = TrainConfig(schedule="cosine", lr=1e-3, warmup_steps=3, max_steps=20)
    opt = _optimizer(cfg.lr)
    sched = build_scheduler(opt, cfg, d_model=8)
    _rates(sched, opt, 7)
    saved_opt = opt.state_dict()
    saved = json.loads(json.dumps(sched.state_dict()))  # must be plain JSON
    continued = _rates(sched, opt, 8)

    # as on resume: build both, then load the optimizer, then the scheduler
    opt2 = _optimizer(cfg.lr)
    sched2 = build_scheduler(opt2, cfg, d_model=8)
    opt2.load_state_dict(saved_opt)
    sched2.load_state_dict(saved)
    assert _rates(sched2, opt2, 8) == continued


def test_cosine_warmup_beyond_max_steps_is_a_config_error():
    cfg = TrainConfig(schedule="cosine", warmup_steps=400, max_steps=50)
    with pytest.raises(ConfigError, match=r"train.warmup_steps.*\(400\).*max_steps \(50\)"):
        build_scheduler(_optimizer(1e-3), cfg, d_model=8)


def test_teacher_forcing_decays_linearly_then_stays():
    cfg = TrainConfig(teacher_forcing=1.0, teacher_forcing_min=0.5, teacher_forcing_decay_steps=100)
    assert teacher_forcing_ratio(0, cfg) == 1.0
    assert teacher_forcing_ratio(50, cfg) == pytest.approx(0.75)
    assert teacher_forcing_ratio(100, cfg) == pytest.approx(0.5)
    assert teacher_forcing_ratio(1000, cfg) == pytest.approx(0.5)
    off = TrainConfig(teacher_forcing=0.8, teacher_forcing_min=0.2, teacher_forcing_decay_steps=0)
    assert teacher_forcing_ratio(10**6, off) == 0.8
    assert math.isclose(teacher_forcing_ratio(25, cfg), 0.875)
