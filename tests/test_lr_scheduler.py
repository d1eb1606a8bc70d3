"""Learning-rate schedules against ``torch.optim.lr_scheduler``: the same rates, epoch by epoch, for two
parameter groups with different rates (≤ 1e-10 relative; they agree to rounding), state-dict round trips,
and clear errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tinygrad_rnn import nn, optim
from tinygrad_rnn.optim import lr_scheduler

torch = pytest.importorskip("torch")

TOL = 1e-10


def optimizers(name="SGD", **kwargs):
    pt = [torch.zeros(2, dtype=torch.float64, requires_grad=True),
          torch.zeros(3, dtype=torch.float64, requires_grad=True)]
    pg = [nn.Parameter(np.zeros(2)), nn.Parameter(np.zeros(3))]

    def groups(ps):
        return [{"params": [ps[0]]}, {"params": [ps[1]], "lr": 0.03}]

    return getattr(torch.optim, name)(groups(pt), lr=0.1, **kwargs), getattr(optim, name)(groups(pg), lr=0.1, **kwargs)


def rel(a, b):
    return abs(a - b) / abs(b) if b else abs(a)


CASES = [
    ("StepLR", {"step_size": 3}),
    ("StepLR", {"step_size": 2, "gamma": 0.5}),
    ("MultiStepLR", {"milestones": [2, 5, 5, 9], "gamma": 0.3}),
    ("ExponentialLR", {"gamma": 0.9}),
    ("CosineAnnealingLR", {"T_max": 7}),
    ("CosineAnnealingLR", {"T_max": 4, "eta_min": 0.01}),  # past T_max it rises again, as torch's
    ("LambdaLR", {"lr_lambda": lambda epoch: 0.95**epoch / (1 + epoch)}),
    ("LambdaLR", {"lr_lambda": [lambda e: 1.0 / (e + 1), lambda e: min(1.0, (e + 1) / 4)]}),
    ("MultiplicativeLR", {"lr_lambda": lambda epoch: 0.9}),
    ("LinearLR", {"start_factor": 0.25, "total_iters": 4}),
    ("LinearLR", {"start_factor": 1.0, "end_factor": 0.1, "total_iters": 6}),
]


@pytest.mark.parametrize("name,kwargs", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_schedule_matches_torch(name, kwargs):
    opt_t, opt_g = optimizers()
    sched_t = getattr(torch.optim.lr_scheduler, name)(opt_t, **kwargs)
    sched_g = getattr(lr_scheduler, name)(opt_g, **kwargs)
    worst = max(rel(a, b) for a, b in zip(sched_g.get_last_lr(), sched_t.get_last_lr(), strict=False))
    for _ in range(20):
        opt_t.step()
        opt_g.step()
        sched_t.step()
        sched_g.step()
        assert sched_g.last_epoch == sched_t.last_epoch
        worst = max(worst, *(rel(a, b) for a, b in zip(sched_g.get_last_lr(), sched_t.get_last_lr(), strict=False)))
        worst = max(worst, *(rel(g["lr"], t["lr"])
                             for g, t in zip(opt_g.param_groups, opt_t.param_groups, strict=False)))
    assert worst <= TOL


@pytest.mark.parametrize("kwargs", [
    {},
    {"mode": "max", "factor": 0.5, "patience": 1, "threshold": 0.1, "threshold_mode": "abs", "cooldown": 2},
    {"factor": 0.3, "patience": 0, "min_lr": [0.01, 0.001], "eps": 1e-3},
    {"patience": 2, "threshold_mode": "abs", "min_lr": 0.02},
])
def test_reduce_lr_on_plateau_matches_torch(kwargs):
    opt_t, opt_g = optimizers("Adam")
    sched_t = torch.optim.lr_scheduler.ReduceLROnPlateau(opt_t, **kwargs)
    sched_g = lr_scheduler.ReduceLROnPlateau(opt_g, **kwargs)
    rng = np.random.default_rng(0)
    metrics = np.concatenate([np.linspace(3, 1, 5), 1 + 0.05 * rng.standard_normal(40)])
    changes = 0
    for m in metrics:
        before = sched_g.get_last_lr()
        sched_t.step(m)
        sched_g.step(m)
        assert sched_g.get_last_lr() == sched_t.get_last_lr()
        assert sched_g.num_bad_epochs == sched_t.num_bad_epochs and sched_g.best == sched_t.best
        changes += sched_g.get_last_lr() != before
    assert changes > 0  # the rates were reduced at least once


def test_scheduler_state_dict_round_trip_continues_exactly():
    _, opt_a = optimizers()
    sched_a = lr_scheduler.CosineAnnealingLR(opt_a, T_max=10, eta_min=0.001)
    for _ in range(4):
        sched_a.step()
    saved_opt, saved = opt_a.state_dict(), sched_a.state_dict()
    _, opt_b = optimizers()
    opt_b.load_state_dict(saved_opt)
    sched_b = lr_scheduler.CosineAnnealingLR(opt_b, T_max=10, eta_min=0.001, last_epoch=3)
    sched_b.load_state_dict(saved)
    for _ in range(6):
        sched_a.step()
        sched_b.step()
        assert sched_a.get_last_lr() == sched_b.get_last_lr()
    assert [g["lr"] for g in opt_a.param_groups] == [g["lr"] for g in opt_b.param_groups]


def test_plateau_state_dict_round_trip():
    _, opt = optimizers()
    sched = lr_scheduler.ReduceLROnPlateau(opt, patience=1)
    for m in (1.0, 2.0, 3.0):
        sched.step(m)
    _, opt2 = optimizers()
    sched2 = lr_scheduler.ReduceLROnPlateau(opt2, patience=1)
    sched2.load_state_dict(sched.state_dict())
    assert sched2.best == 1.0 and sched2.num_bad_epochs == sched.num_bad_epochs


def test_lambda_state_dict_skips_functions():
    _, opt = optimizers()
    sched = lr_scheduler.LambdaLR(opt, lambda e: 0.5**e)
    sd = sched.state_dict()
    assert sd["lr_lambdas"] == [None, None] and "optimizer" not in sd
    sched.step()
    sched.load_state_dict(sd)
    assert sched.last_epoch == 0


def test_step_with_epoch_uses_the_closed_form():
    opt_t, opt_g = optimizers()
    sched_t = torch.optim.lr_scheduler.StepLR(opt_t, step_size=2, gamma=0.5)
    sched_g = lr_scheduler.StepLR(opt_g, step_size=2, gamma=0.5)
    with pytest.warns(UserWarning):
        sched_t.step(5)
    sched_g.step(5)
    assert sched_g.get_last_lr() == pytest.approx(sched_t.get_last_lr(), rel=1e-15)


@pytest.mark.parametrize("make,match", [
    (lambda o: lr_scheduler.StepLR("sgd", 2), "StepLR: expected an Optimizer"),
    (lambda o: lr_scheduler.StepLR(o, 0), "StepLR: step_size must be an integer >= 1"),
    (lambda o: lr_scheduler.StepLR(o, 2.5), "step_size"),
    (lambda o: lr_scheduler.StepLR(o, 2, gamma=math.nan), "StepLR: gamma"),
    (lambda o: lr_scheduler.ExponentialLR(o, gamma=-1), "ExponentialLR: gamma"),
    (lambda o: lr_scheduler.MultiStepLR(o, [1, -2]), "each milestone"),
    (lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=0), "T_max"),
    (lambda o: lr_scheduler.LambdaLR(o, [lambda e: 1.0]), "expected 2 lr_lambda functions"),
    (lambda o: lr_scheduler.LambdaLR(o, 0.5), "lr_lambda must be a function"),
    (lambda o: lr_scheduler.LinearLR(o, start_factor=0), "start_factor"),
    (lambda o: lr_scheduler.StepLR(o, 2, last_epoch=3), "has no 'initial_lr'"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, mode="minimum"), "mode must be 'min' or 'max'"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, factor=1.0), "factor"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, threshold_mode="relative"), "threshold_mode"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, min_lr=[0.1]), "expected 2 min_lr values"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, patience=-1), "patience"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o).step("low"), "metrics must be a real number"),
    (lambda o: lr_scheduler.StepLR(o, 2).load_state_dict({"last_epoch": 3}), "missing entries"),
    (lambda o: lr_scheduler.StepLR(o, 2).load_state_dict(
        {**lr_scheduler.StepLR(o, 2).state_dict(), "base_lrs": [0.1]}), "base_lrs must be a list of 2"),
])
def test_bad_scheduler_arguments_raise_clear_errors(make, match):
    _, opt = optimizers()
    with pytest.raises(optim.OptimizerError, match=match):
        make(opt)


MORE_CASES = [
    ("ConstantLR", {"factor": 0.5, "total_iters": 4}, "SGD"),
    ("PolynomialLR", {"total_iters": 8, "power": 2.0}, "SGD"),
    ("CosineAnnealingWarmRestarts", {"T_0": 3}, "SGD"),
    ("CosineAnnealingWarmRestarts", {"T_0": 2, "T_mult": 2, "eta_min": 0.001}, "SGD"),
    ("OneCycleLR", {"max_lr": 1.0, "total_steps": 25}, "SGD"),
    ("OneCycleLR", {"max_lr": [0.5, 0.2], "epochs": 5, "steps_per_epoch": 5, "anneal_strategy": "linear",
                    "three_phase": True}, "Adam"),
    ("OneCycleLR", {"max_lr": 0.3, "total_steps": 25, "cycle_momentum": False, "pct_start": 0.5}, "Adagrad"),
]


@pytest.mark.parametrize("name,kwargs,opt", MORE_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(MORE_CASES)])
def test_more_schedules_match_torch(name, kwargs, opt):
    opt_t, opt_g = optimizers(opt, **({"momentum": 0.9} if opt == "SGD" else {}))
    sched_t = getattr(torch.optim.lr_scheduler, name)(opt_t, **kwargs)
    sched_g = getattr(lr_scheduler, name)(opt_g, **kwargs)
    worst = 0.0
    for _ in range(24):
        opt_t.step()
        opt_g.step()
        sched_t.step()
        sched_g.step()
        worst = max(worst, *(rel(a, b) for a, b in zip(sched_g.get_last_lr(), sched_t.get_last_lr(), strict=True)))
        for g, t in zip(opt_g.param_groups, opt_t.param_groups, strict=True):
            for key in ("momentum", "betas"):
                if key in t:
                    assert g[key] == pytest.approx(t[key], rel=1e-12)
    assert worst <= TOL


@pytest.mark.parametrize("first,second", [
    (("LinearLR", {"start_factor": 0.1, "total_iters": 3}), ("CosineAnnealingLR", {"T_max": 10})),
    (("ExponentialLR", {"gamma": 0.8}), ("StepLR", {"step_size": 2, "gamma": 0.5})),
])
def test_sequential_lr_matches_torch(first, second):
    opt_t, opt_g = optimizers()
    scheds = []
    for lib, opt in ((torch.optim.lr_scheduler, opt_t), (lr_scheduler, opt_g)):
        parts = [getattr(lib, name)(opt, **kwargs) for name, kwargs in (first, second)]
        scheds.append(lib.SequentialLR(opt, parts, milestones=[4]))
    sched_t, sched_g = scheds
    assert sched_g.get_last_lr() == pytest.approx(sched_t.get_last_lr(), rel=1e-12)
    for _ in range(12):
        opt_t.step()
        opt_g.step()
        sched_t.step()
        sched_g.step()
        assert sched_g.get_last_lr() == pytest.approx(sched_t.get_last_lr(), rel=1e-12)
    restored = lr_scheduler.SequentialLR(opt_g, [getattr(lr_scheduler, n)(opt_g, **k) for n, k in (first, second)],
                                         milestones=[4])
    restored.load_state_dict(sched_g.state_dict())
    assert restored.last_epoch == sched_g.last_epoch


def test_one_cycle_refuses_steps_past_total():
    _, opt = optimizers()
    sched = lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=2)
    sched.step()
    sched.step()
    with pytest.raises(optim.OptimizerError, match="past total_steps=2"):
        sched.step()
    with pytest.raises(optim.OptimizerError, match="give total_steps"):
        lr_scheduler.OneCycleLR(opt, max_lr=0.1)


def test_lambda_returning_a_non_number_and_huge_ints_raise_clear_errors():
    _, opt = optimizers()
    with pytest.raises(optim.OptimizerError, match=r"LambdaLR: lr_lambda\(0\) must be a finite number"):
        lr_scheduler.LambdaLR(opt, lambda e: "fast")
    with pytest.raises(optim.OptimizerError, match="StepLR: gamma"):
        lr_scheduler.StepLR(opt, 2, gamma=10**400)
    with pytest.raises(optim.OptimizerError, match="SGD: lr"):
        optim.SGD(opt.param_groups[0]["params"], lr=10**400)


def test_chained_scheduler_matches_torch():
    opt_t, opt_g = optimizers()
    chains = []
    for lib, opt in ((torch.optim.lr_scheduler, opt_t), (lr_scheduler, opt_g)):
        chains.append(lib.ChainedScheduler([lib.ConstantLR(opt, factor=0.5, total_iters=3),
                                            lib.ExponentialLR(opt, gamma=0.9)]))
    chain_t, chain_g = chains
    for _ in range(8):
        opt_t.step()
        opt_g.step()
        chain_t.step()
        chain_g.step()
        assert chain_g.get_last_lr() == pytest.approx(chain_t.get_last_lr(), rel=1e-12)
    chain_g.load_state_dict(chain_g.state_dict())
    with pytest.raises(optim.OptimizerError, match="ReduceLROnPlateau"):
        lr_scheduler.ChainedScheduler([lr_scheduler.ReduceLROnPlateau(opt_g)])
