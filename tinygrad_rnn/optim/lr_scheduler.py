"""Learning-rate schedules (``torch.optim.lr_scheduler``), with PyTorch's formulas and call order.

Create the scheduler after the optimizer, call ``optimizer.step()`` then ``scheduler.step()`` once per
epoch (or per iteration), read the current rates with ``get_last_lr()``. A scheduler writes each group's
``"lr"`` (and records ``"initial_lr"``), so it works with every optimizer here. The recursive ("chainable")
forms are the ones PyTorch uses, so the rates agree with PyTorch's to rounding (≤ 1e-15 relative).
"""

from __future__ import annotations

import math
import types
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from tinygrad_rnn.optim.optimizer import Optimizer, OptimizerError, check_number

__all__ = [
    "ChainedScheduler",
    "ConstantLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "ExponentialLR",
    "LRScheduler",
    "LambdaLR",
    "LinearLR",
    "MultiStepLR",
    "MultiplicativeLR",
    "OneCycleLR",
    "PolynomialLR",
    "ReduceLROnPlateau",
    "SequentialLR",
    "StepLR",
]


def _check_optimizer(name: str, optimizer: Any) -> None:
    if not isinstance(optimizer, Optimizer):
        raise OptimizerError(f"{name}: expected an Optimizer (e.g. optim.SGD(...)), got {type(optimizer).__name__}")


def _check_int(name: str, what: str, value: Any, low: int) -> None:
    check_number(name, what, value, low, integer=True)


class LRScheduler:
    """Base class of the schedules: sets every group's ``"lr"`` from ``get_lr()`` at each :meth:`step`.

    Args:
        optimizer: the optimizer whose groups' ``"lr"`` it sets.
        last_epoch: the index of the last epoch, -1 (default) to start; a resumed schedule passes the
            epoch it stopped at (the groups must then hold ``"initial_lr"``).

    Attributes:
        base_lrs: each group's ``"initial_lr"``. last_epoch: the number of :meth:`step` calls so far.

    Raises:
        OptimizerError: not an optimizer, a bad ``last_epoch``, or ``last_epoch >= 0`` without ``initial_lr``.
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        name = type(self).__name__
        _check_optimizer(name, optimizer)
        _check_int(name, "last_epoch", last_epoch, -1)
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise OptimizerError(f"{name}: param_groups[{i}] has no 'initial_lr', needed to resume at "
                                         f"last_epoch={last_epoch}; load the optimizer's state dict first")
        self.base_lrs: list[float] = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self) -> None:
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self) -> list[float]:  # pragma: no cover - abstract
        """The rates for the epoch ``last_epoch`` (called by :meth:`step`)."""
        raise NotImplementedError

    def get_last_lr(self) -> list[float]:
        """The rates last set, one per parameter group."""
        return list(self._last_lr)

    def step(self, epoch: int | None = None) -> None:
        """Advance one epoch and set each group's ``"lr"``.

        Args:
            epoch: deprecated in PyTorch; jump to this epoch (the closed form is used where one exists).
        """
        self._step_count += 1
        self._update_lr(epoch)

    def _update_lr(self, epoch: int | None = None) -> None:
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            _check_int(type(self).__name__, "epoch", epoch, 0)
            self.last_epoch = epoch
            closed = getattr(self, "_get_closed_form_lr", None)
            values = closed() if closed is not None else self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, values, strict=False):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _group_lrs(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    _not_saved: tuple[str, ...] = ("optimizer",)

    def state_dict(self) -> dict[str, Any]:
        """Every attribute but the optimizer (as PyTorch): ``last_epoch``, ``base_lrs``, the options."""
        return {k: (list(v) if isinstance(v, list) else v) for k, v in self.__dict__.items()
                if k not in self._not_saved}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore a state from :meth:`state_dict` (checked first: nothing changes on error).

        Raises:
            OptimizerError: not a dict, unknown or missing entries, or a ``base_lrs`` of another length.
        """
        name = type(self).__name__
        if not isinstance(state_dict, Mapping):
            raise OptimizerError(f"{name}.load_state_dict: expected a dict, got {type(state_dict).__name__}")
        expected = {k for k in self.__dict__ if k not in self._not_saved}
        unknown, missing = sorted(set(state_dict) - expected), sorted(expected - set(state_dict))
        if unknown or missing:
            raise OptimizerError(f"{name}.load_state_dict: unknown entries {unknown}, missing entries {missing} "
                                 f"(is it the state of a {name}?)")
        n = len(self.optimizer.param_groups)
        for key in ("base_lrs", "_last_lr", "min_lrs"):
            if key in state_dict and (not isinstance(state_dict[key], (list, tuple)) or len(state_dict[key]) != n):
                raise OptimizerError(f"{name}.load_state_dict: {key} must be a list of {n} value(s) (one per "
                                     f"parameter group), got {state_dict[key]!r}")
        _check_int(name, "last_epoch", state_dict["last_epoch"], -1)
        self.__dict__.update({k: (list(v) if isinstance(v, tuple) else v) for k, v in state_dict.items()})


def _lambdas(name: str, optimizer: Optimizer, lr_lambda: Any) -> list[Callable[[int], float]]:
    _check_optimizer(name, optimizer)
    n = len(optimizer.param_groups)
    if isinstance(lr_lambda, (list, tuple)):
        if len(lr_lambda) != n:
            raise OptimizerError(f"{name}: expected {n} lr_lambda functions (one per parameter group), got "
                                 f"{len(lr_lambda)}")
        fns = list(lr_lambda)
    else:
        fns = [lr_lambda] * n
    for fn in fns:
        if not callable(fn):
            raise OptimizerError(f"{name}: lr_lambda must be a function of the epoch, got {type(fn).__name__}")
    return fns


def _factor(name: str, fn: Callable[[int], float], epoch: int) -> float:
    """``fn(epoch)``, checked to be a finite real number >= 0."""
    value = fn(epoch)
    check_number(name, f"lr_lambda({epoch})", value)
    return value


class _LambdaState(LRScheduler):
    """State dicts of schedules holding functions: the functions are not saved (as PyTorch)."""

    _not_saved = ("optimizer", "lr_lambdas")
    lr_lambdas: list[Any]  # set by the subclass's __init__

    def state_dict(self) -> dict[str, Any]:
        out = super().state_dict()
        out["lr_lambdas"] = [None if isinstance(fn, types.FunctionType) else dict(fn.__dict__)
                             for fn in self.lr_lambdas]
        return out

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        state = dict(state_dict)
        fns = state.pop("lr_lambdas", [None] * len(self.lr_lambdas))
        if not isinstance(fns, (list, tuple)) or len(fns) != len(self.lr_lambdas):
            raise OptimizerError(f"{type(self).__name__}.load_state_dict: lr_lambdas must be a list of "
                                 f"{len(self.lr_lambdas)} entries, got {fns!r}")
        super().load_state_dict(state)
        for fn, saved in zip(self.lr_lambdas, fns, strict=False):
            if saved is not None:
                fn.__dict__.update(saved)


class LambdaLR(_LambdaState):
    """``lr = initial_lr · lr_lambda(epoch)``, one function per group or one for all.

    Raises:
        OptimizerError: a non-callable ``lr_lambda`` or a list of the wrong length.
    """

    def __init__(self, optimizer: Optimizer, lr_lambda: Callable[[int], float] | Sequence[Callable[[int], float]],
                 last_epoch: int = -1):
        self.lr_lambdas = _lambdas("LambdaLR", optimizer, lr_lambda)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [base_lr * _factor("LambdaLR", fn, self.last_epoch)
                for fn, base_lr in zip(self.lr_lambdas, self.base_lrs, strict=False)]


class MultiplicativeLR(_LambdaState):
    """``lr ← lr · lr_lambda(epoch)`` at each step after the first.

    Raises:
        OptimizerError: a non-callable ``lr_lambda`` or a list of the wrong length.
    """

    def __init__(self, optimizer: Optimizer, lr_lambda: Callable[[int], float] | Sequence[Callable[[int], float]],
                 last_epoch: int = -1):
        self.lr_lambdas = _lambdas("MultiplicativeLR", optimizer, lr_lambda)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self._is_initial:
            return self._group_lrs()
        return [group["lr"] * _factor("MultiplicativeLR", fn, self.last_epoch)
                for fn, group in zip(self.lr_lambdas, self.optimizer.param_groups, strict=False)]


class StepLR(LRScheduler):
    """``lr = initial_lr · gamma^⌊epoch / step_size⌋`` (applied as ``lr ← gamma·lr`` every ``step_size`` epochs).

    Args:
        step_size: an int >= 1. gamma: a finite number >= 0 (default 0.1).
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        _check_int("StepLR", "step_size", step_size, 1)
        check_number("StepLR", "gamma", gamma)
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._group_lrs()
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[float]:
        return [base_lr * self.gamma ** (self.last_epoch // self.step_size) for base_lr in self.base_lrs]


class MultiStepLR(LRScheduler):
    """``lr = initial_lr · gamma^(number of milestones <= epoch)``.

    Args:
        milestones: epoch indices (ints >= 0; a repeated one multiplies by gamma that many times).
        gamma: a finite number >= 0 (default 0.1).
    """

    def __init__(self, optimizer: Optimizer, milestones: Iterable[int], gamma: float = 0.1, last_epoch: int = -1):
        milestones = list(milestones)
        for m in milestones:
            _check_int("MultiStepLR", "each milestone", m, 0)
        check_number("MultiStepLR", "gamma", gamma)
        self.milestones, self.gamma = Counter(milestones), gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch not in self.milestones:
            return self._group_lrs()
        return [group["lr"] * self.gamma ** self.milestones[self.last_epoch] for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[float]:
        milestones = sorted(self.milestones.elements())
        return [base_lr * self.gamma ** bisect_right(milestones, self.last_epoch) for base_lr in self.base_lrs]


class LinearLR(LRScheduler):
    """The factor goes linearly from ``start_factor`` to ``end_factor`` over ``total_iters`` epochs:
    ``lr = initial_lr · (start + (end - start)·min(epoch, total_iters)/total_iters)`` (a warm-up).

    Args:
        start_factor: in (0, 1] (default 1/3). end_factor: in [0, 1] (default 1). total_iters: int >= 1 (5).
    """

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1):
        check_number("LinearLR", "start_factor", start_factor, 0.0, 1.0, low_open=True)
        check_number("LinearLR", "end_factor", end_factor, 0.0, 1.0)
        _check_int("LinearLR", "total_iters", total_iters, 1)
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0:
            return [group["lr"] * self.start_factor for group in self.optimizer.param_groups]
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._group_lrs()
        delta = self.end_factor - self.start_factor
        factor = 1.0 + delta / (self.total_iters * self.start_factor + (self.last_epoch - 1) * delta)
        return [group["lr"] * factor for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[float]:
        delta = self.end_factor - self.start_factor
        return [base_lr * (self.start_factor + delta * min(self.total_iters, self.last_epoch) / self.total_iters)
                for base_lr in self.base_lrs]


class ExponentialLR(LRScheduler):
    """``lr = initial_lr · gamma^epoch`` (applied as ``lr ← gamma·lr`` each epoch).

    Args:
        gamma: a finite number >= 0.
    """

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1):
        check_number("ExponentialLR", "gamma", gamma)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self._is_initial:
            return self._group_lrs()
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[float]:
        return [base_lr * self.gamma**self.last_epoch for base_lr in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """Cosine annealing (Loshchilov & Hutter, 2017, "SGDR: Stochastic Gradient Descent with Warm Restarts",
    without the restarts): ``lr = eta_min + (initial_lr - eta_min)·(1 + cos(π·epoch/T_max))/2``, computed by
    PyTorch's recursive form (past ``T_max`` it rises again, as PyTorch's does).

    Args:
        T_max: int >= 1, the half period. eta_min: the floor, a finite number >= 0 (default 0).
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        _check_int("CosineAnnealingLR", "T_max", T_max, 1)
        check_number("CosineAnnealingLR", "eta_min", eta_min)
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self._is_initial:
            return self._group_lrs()
        if self._step_count == 1 and self.last_epoch > 0:
            return [self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(self.last_epoch * math.pi / self.T_max)) / 2
                    for base_lr in self.base_lrs]
        if (self.last_epoch - 1 - self.T_max) % (2 * self.T_max) == 0:
            return [group["lr"] + (base_lr - self.eta_min) * (1 - math.cos(math.pi / self.T_max)) / 2
                    for base_lr, group in zip(self.base_lrs, self.optimizer.param_groups, strict=False)]
        ratio = (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / (
            1 + math.cos(math.pi * (self.last_epoch - 1) / self.T_max))
        return [ratio * (group["lr"] - self.eta_min) + self.eta_min for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[float]:
        return [self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
                for base_lr in self.base_lrs]


class ReduceLROnPlateau(LRScheduler):
    """Multiply the rates by ``factor`` when a metric has stopped improving for ``patience`` epochs.

    ``step(metric)`` after each evaluation. In ``'min'`` mode the metric improves when it is below
    ``best·(1 - threshold)`` (``threshold_mode='rel'``) or ``best - threshold`` (``'abs'``); ``'max'`` mirrors
    it. After more than ``patience`` epochs without improvement, ``lr ← max(lr·factor, min_lr)`` (skipped if
    the change is at most ``eps``), then ``cooldown`` epochs are ignored.

    Args:
        mode: ``'min'`` or ``'max'``. factor: in [0, 1) (default 0.1). patience: int >= 0 (default 10).
        threshold: >= 0 (default 1e-4). threshold_mode: ``'rel'`` or ``'abs'``. cooldown: int >= 0 (0).
        min_lr: >= 0, one for all groups or a list, one per group (default 0). eps: >= 0 (default 1e-8).

    Raises:
        OptimizerError: an option out of range; a metric that is not a real number.
    """

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                 min_lr: float | Sequence[float] = 0.0, eps: float = 1e-8):
        name = "ReduceLROnPlateau"
        _check_optimizer(name, optimizer)
        check_number(name, "factor", factor, 0.0, 1.0, high_open=True)
        _check_int(name, "patience", patience, 0)
        _check_int(name, "cooldown", cooldown, 0)
        check_number(name, "threshold", threshold)
        check_number(name, "eps", eps)
        if mode not in ("min", "max"):
            raise OptimizerError(f"{name}: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise OptimizerError(f"{name}: threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        n = len(optimizer.param_groups)
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != n:
                raise OptimizerError(f"{name}: expected {n} min_lr values (one per parameter group), got {len(min_lr)}")
            self.default_min_lr, self.min_lrs = None, list(min_lr)
        else:
            self.default_min_lr, self.min_lrs = min_lr, [min_lr] * n
        for value in self.min_lrs:
            check_number(name, "min_lr", value)
        self.optimizer = optimizer
        self.mode, self.factor, self.patience, self.threshold = mode, factor, patience, threshold
        self.threshold_mode, self.cooldown, self.eps = threshold_mode, cooldown, eps
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.last_epoch = 0
        self._last_lr = self._group_lrs()
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    def step(self, metrics: Any, epoch: int | None = None) -> None:  # type: ignore[override]
        """Record one value of the monitored metric (e.g. the validation loss) and maybe reduce the rates."""
        try:
            current = float(metrics)
        except (TypeError, ValueError):
            raise OptimizerError(f"ReduceLROnPlateau.step: metrics must be a real number (or a 1-element tensor), "
                                 f"got {type(metrics).__name__}") from None
        self.last_epoch = self.last_epoch + 1 if epoch is None else epoch
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs in cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = self._group_lrs()

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def _reduce_lr(self) -> None:
        if len(self.optimizer.param_groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise OptimizerError(f"ReduceLROnPlateau: the optimizer has {len(self.optimizer.param_groups)} "
                                     f"parameter groups, min_lr was given for {len(self.min_lrs)}")
            self.min_lrs = [self.default_min_lr] * len(self.optimizer.param_groups)
        for i, group in enumerate(self.optimizer.param_groups):
            old_lr = float(group["lr"])
            new_lr = max(old_lr * self.factor, self.min_lrs[i])
            if old_lr - new_lr > self.eps:
                group["lr"] = new_lr

    def _is_better(self, a: float, best: float) -> bool:
        if self.mode == "min" and self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold)
        if self.mode == "min":
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold



class ConstantLR(LRScheduler):
    """``lr = initial_lr · factor`` for the first ``total_iters`` epochs, then ``initial_lr``.

    Args:
        factor: in [0, 1] (default 1/3). total_iters: int >= 0 (default 5).
    """

    def __init__(self, optimizer: Optimizer, factor: float = 1.0 / 3, total_iters: int = 5, last_epoch: int = -1):
        check_number("ConstantLR", "factor", factor, 0.0, 1.0)
        _check_int("ConstantLR", "total_iters", total_iters, 0)
        self.factor, self.total_iters = factor, total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0:
            return [group["lr"] * self.factor for group in self.optimizer.param_groups]
        if self.last_epoch != self.total_iters:
            return self._group_lrs()
        return [group["lr"] * (1.0 / self.factor) for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[float]:
        return [base_lr * (self.factor + (self.last_epoch >= self.total_iters) * (1 - self.factor))
                for base_lr in self.base_lrs]


class PolynomialLR(LRScheduler):
    """``lr = initial_lr · (1 - min(epoch, total_iters)/total_iters)^power`` (applied as a per-epoch ratio).

    Args:
        total_iters: int >= 1 (default 5). power: a finite number >= 0 (default 1).
    """

    def __init__(self, optimizer: Optimizer, total_iters: int = 5, power: float = 1.0, last_epoch: int = -1):
        _check_int("PolynomialLR", "total_iters", total_iters, 1)
        check_number("PolynomialLR", "power", power)
        self.total_iters, self.power = total_iters, power
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._group_lrs()
        factor = ((1.0 - self.last_epoch / self.total_iters)
                  / (1.0 - (self.last_epoch - 1) / self.total_iters)) ** self.power
        return [group["lr"] * factor for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[float]:
        return [base_lr * (1.0 - min(self.total_iters, self.last_epoch) / self.total_iters) ** self.power
                for base_lr in self.base_lrs]


class CosineAnnealingWarmRestarts(LRScheduler):
    """SGDR (Loshchilov & Hutter, 2017): ``lr = eta_min + (initial_lr - eta_min)·(1 + cos(π·T_cur/T_i))/2``,
    where ``T_cur`` counts epochs since the last restart and the period ``T_i`` starts at ``T_0`` and is
    multiplied by ``T_mult`` at each restart.

    Args:
        T_0: int >= 1. T_mult: int >= 1 (default 1). eta_min: a finite number >= 0 (default 0).
    """

    def __init__(self, optimizer: Optimizer, T_0: int, T_mult: int = 1, eta_min: float = 0.0, last_epoch: int = -1):
        _check_int("CosineAnnealingWarmRestarts", "T_0", T_0, 1)
        _check_int("CosineAnnealingWarmRestarts", "T_mult", T_mult, 1)
        check_number("CosineAnnealingWarmRestarts", "eta_min", eta_min)
        self.T_0, self.T_i, self.T_mult, self.eta_min = T_0, T_0, T_mult, eta_min
        self.T_cur: float = last_epoch
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
                for base_lr in self.base_lrs]

    def step(self, epoch: float | None = None) -> None:
        """Advance one epoch (or jump to ``epoch``, which may be fractional: an iteration within an epoch)."""
        self._step_count += 1
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur += 1
            if self.T_cur >= self.T_i:
                self.T_cur %= self.T_i
                self.T_i *= self.T_mult
        else:
            check_number("CosineAnnealingWarmRestarts", "epoch", epoch)
            if epoch >= self.T_0:
                if self.T_mult == 1:
                    self.T_cur = epoch % self.T_0
                else:
                    n = int(math.log(epoch / self.T_0 * (self.T_mult - 1) + 1, self.T_mult))
                    self.T_cur = epoch - self.T_0 * (self.T_mult**n - 1) / (self.T_mult - 1)
                    self.T_i = self.T_0 * self.T_mult**n
            else:
                self.T_i, self.T_cur = self.T_0, epoch
        self.last_epoch = math.floor(epoch)
        for group, lr in zip(self.optimizer.param_groups, self.get_lr(), strict=True):
            group["lr"] = lr
        self._last_lr = self._group_lrs()


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin, 2019, "Super-Convergence"): the rate rises from
    ``max_lr/div_factor`` to ``max_lr`` over ``pct_start`` of ``total_steps``, then falls to
    ``initial_lr/final_div_factor`` (cosine or linear annealing); the momentum (SGD's ``momentum`` or Adam's
    β1) cycles the other way between ``max_momentum`` and ``base_momentum``. Step it once per batch.

    Args:
        max_lr: one for all groups or a list. total_steps, or epochs and steps_per_epoch: ints >= 1.
        pct_start: in [0, 1] (default 0.3). anneal_strategy: ``'cos'`` or ``'linear'``.
        cycle_momentum: default True (needs an optimizer with ``momentum`` or ``betas``).
        base_momentum, max_momentum: defaults 0.85, 0.95. div_factor: default 25. final_div_factor: 1e4.
        three_phase: a third phase back down to ``initial_lr`` first (default False).

    Raises:
        OptimizerError: bad options; stepping past ``total_steps``.
    """

    def __init__(self, optimizer: Optimizer, max_lr: float | Sequence[float], total_steps: int | None = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True,
                 base_momentum: float | Sequence[float] = 0.85, max_momentum: float | Sequence[float] = 0.95,
                 div_factor: float = 25.0, final_div_factor: float = 1e4, three_phase: bool = False,
                 last_epoch: int = -1):
        name = "OneCycleLR"
        _check_optimizer(name, optimizer)
        if total_steps is not None:
            _check_int(name, "total_steps", total_steps, 1)
        elif epochs is not None and steps_per_epoch is not None:
            _check_int(name, "epochs", epochs, 1)
            _check_int(name, "steps_per_epoch", steps_per_epoch, 1)
            total_steps = epochs * steps_per_epoch
        else:
            raise OptimizerError(f"{name}: give total_steps, or epochs and steps_per_epoch")
        check_number(name, "pct_start", pct_start, 0.0, 1.0)
        check_number(name, "div_factor", div_factor, 0.0, low_open=True)
        check_number(name, "final_div_factor", final_div_factor, 0.0, low_open=True)
        if anneal_strategy not in ("cos", "linear"):
            raise OptimizerError(f"{name}: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        self.total_steps, self.anneal_strategy = total_steps, anneal_strategy
        first = float(pct_start * total_steps) - 1
        if three_phase:
            self._phases = [(first, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                            (float(2 * pct_start * total_steps) - 2, "max_lr", "initial_lr", "base_momentum",
                             "max_momentum"),
                            (total_steps - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum")]
        else:
            self._phases = [(first, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                            (total_steps - 1, "max_lr", "min_lr", "base_momentum", "max_momentum")]
        max_lrs = self._per_group(name, "max_lr", optimizer, max_lr)
        if last_epoch == -1:
            for group, lr in zip(optimizer.param_groups, max_lrs, strict=True):
                group["initial_lr"] = lr / div_factor
                group["max_lr"] = lr
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise OptimizerError(f"{name}: cycle_momentum needs an optimizer with momentum or betas, got "
                                     f"{type(optimizer).__name__} (pass cycle_momentum=False)")
            self.use_beta1 = "betas" in optimizer.defaults
            highs = self._per_group(name, "max_momentum", optimizer, max_momentum)
            lows = self._per_group(name, "base_momentum", optimizer, base_momentum)
            if last_epoch == -1:
                for high, low, group in zip(highs, lows, optimizer.param_groups, strict=True):
                    if self.use_beta1:
                        group["betas"] = (high, *group["betas"][1:])
                    else:
                        group["momentum"] = high
                    group["max_momentum"], group["base_momentum"] = high, low
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _per_group(name: str, what: str, optimizer: Optimizer, value: Any) -> list[float]:
        n = len(optimizer.param_groups)
        values = list(value) if isinstance(value, (list, tuple)) else [value] * n
        if len(values) != n:
            raise OptimizerError(f"{name}: expected {n} {what} values (one per parameter group), got {len(values)}")
        for v in values:
            check_number(name, what, v)
        return values

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self) -> list[float]:
        step = self.last_epoch
        if step > self.total_steps:
            raise OptimizerError(f"OneCycleLR: stepped {step} times, past total_steps={self.total_steps}")
        lrs = []
        for group in self.optimizer.param_groups:
            start_step = 0.0
            for i, (end_step, lr0, lr1, m0, m1) in enumerate(self._phases):
                if step <= end_step or i == len(self._phases) - 1:
                    pct = (step - start_step) / (end_step - start_step)
                    lr = self._anneal(group[lr0], group[lr1], pct)
                    momentum = self._anneal(group[m0], group[m1], pct) if self.cycle_momentum else None
                    break
                start_step = end_step
            lrs.append(lr)
            if self.cycle_momentum:
                if self.use_beta1:
                    group["betas"] = (momentum, *group["betas"][1:])
                else:
                    group["momentum"] = momentum
        return lrs


class SequentialLR(LRScheduler):
    """Run ``schedulers[0]`` until ``milestones[0]``, then ``schedulers[1]`` (restarted at epoch 0), and so on
    (e.g. a ``LinearLR`` warm-up followed by ``CosineAnnealingLR``).

    Raises:
        OptimizerError: no scheduler, one of another optimizer, a ``ReduceLROnPlateau``, or
            ``len(milestones) != len(schedulers) - 1``.
    """

    def __init__(self, optimizer: Optimizer, schedulers: Sequence[LRScheduler], milestones: Sequence[int],
                 last_epoch: int = -1):
        name = "SequentialLR"
        _check_optimizer(name, optimizer)
        schedulers, milestones = list(schedulers), list(milestones)
        if not schedulers:
            raise OptimizerError(f"{name}: expected at least one scheduler")
        for i, s in enumerate(schedulers):
            if isinstance(s, ReduceLROnPlateau) or not isinstance(s, LRScheduler):
                raise OptimizerError(f"{name}: schedulers[{i}] must be an LRScheduler other than ReduceLROnPlateau, "
                                     f"got {type(s).__name__}")
            if s.optimizer is not optimizer:
                raise OptimizerError(f"{name}: schedulers[{i}] belongs to another optimizer")
        if len(milestones) != len(schedulers) - 1:
            raise OptimizerError(f"{name}: expected {len(schedulers) - 1} milestone(s) for {len(schedulers)} "
                                 f"schedulers, got {len(milestones)}")
        for m in milestones:
            _check_int(name, "each milestone", m, 0)
        self._schedulers, self._milestones = schedulers, milestones
        self.last_epoch = last_epoch + 1
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        for s in schedulers:  # undo the initial step each scheduler took at construction
            s.last_epoch -= 1
        self._schedulers[bisect_right(self._milestones, 0)]._initial_step()
        self._last_lr = schedulers[bisect_right(self._milestones, 0)].get_last_lr()

    def step(self) -> None:  # type: ignore[override]
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            scheduler._update_lr(0)  # the next scheduler starts at its epoch 0
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    _not_saved = ("optimizer", "_schedulers")

    def state_dict(self) -> dict[str, Any]:
        out = super().state_dict()
        out["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return out

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        state = dict(state_dict)
        saved = state.pop("_schedulers", None)
        if not isinstance(saved, list) or len(saved) != len(self._schedulers):
            raise OptimizerError(f"SequentialLR.load_state_dict: _schedulers must be a list of "
                                 f"{len(self._schedulers)} state dicts, got {saved!r}")
        super().load_state_dict(state)
        for s, sd in zip(self._schedulers, saved, strict=True):
            s.load_state_dict(sd)


class ChainedScheduler(LRScheduler):
    """Step several schedulers of one optimizer together, each scaling the rate the previous one set
    (e.g. ``ConstantLR`` then ``ExponentialLR``).

    Raises:
        OptimizerError: no scheduler, a ``ReduceLROnPlateau``, or schedulers of different optimizers.
    """

    def __init__(self, schedulers: Sequence[LRScheduler], optimizer: Optimizer | None = None):
        name = "ChainedScheduler"
        schedulers = list(schedulers)
        if not schedulers:
            raise OptimizerError(f"{name}: expected at least one scheduler")
        optimizer = optimizer if optimizer is not None else getattr(schedulers[0], "optimizer", None)
        _check_optimizer(name, optimizer)
        assert optimizer is not None  # (_check_optimizer raised otherwise)
        for i, s in enumerate(schedulers):
            if isinstance(s, ReduceLROnPlateau) or not isinstance(s, LRScheduler):
                raise OptimizerError(f"{name}: schedulers[{i}] must be an LRScheduler other than ReduceLROnPlateau, "
                                     f"got {type(s).__name__}")
            if s.optimizer is not optimizer:
                raise OptimizerError(f"{name}: schedulers[{i}] belongs to another optimizer")
        self._schedulers, self.optimizer = schedulers, optimizer
        self._last_lr = self._group_lrs()

    def step(self) -> None:  # type: ignore[override]
        for s in self._schedulers:
            s.step()
        self._last_lr = self._group_lrs()

    _not_saved = ("optimizer", "_schedulers")

    def state_dict(self) -> dict[str, Any]:
        out = super().state_dict()
        out["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return out

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        state = dict(state_dict)
        saved = state.pop("_schedulers", None)
        if not isinstance(saved, list) or len(saved) != len(self._schedulers):
            raise OptimizerError(f"ChainedScheduler.load_state_dict: _schedulers must be a list of "
                                 f"{len(self._schedulers)} state dicts, got {saved!r}")
        if not isinstance(state.get("_last_lr"), list):
            raise OptimizerError("ChainedScheduler.load_state_dict: expected the state of a ChainedScheduler")
        self._last_lr = list(state["_last_lr"])
        for s, sd in zip(self._schedulers, saved, strict=True):
            s.load_state_dict(sd)
