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
    "CosineAnnealingLR",
    "ExponentialLR",
    "LRScheduler",
    "LambdaLR",
    "LinearLR",
    "MultiStepLR",
    "MultiplicativeLR",
    "ReduceLROnPlateau",
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
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            _check_int(type(self).__name__, "epoch", epoch, 0)
            self.last_epoch = epoch
            closed = getattr(self, "_get_closed_form_lr", None)
            values = closed() if closed is not None else self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, values):
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


class _LambdaState(LRScheduler):
    """State dicts of schedules holding functions: the functions are not saved (as PyTorch)."""

    _not_saved = ("optimizer", "lr_lambdas")

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
        for fn, saved in zip(self.lr_lambdas, fns):
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
        return [base_lr * fn(self.last_epoch) for fn, base_lr in zip(self.lr_lambdas, self.base_lrs)]


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
        return [group["lr"] * fn(self.last_epoch) for fn, group in zip(self.lr_lambdas, self.optimizer.param_groups)]


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
                    for base_lr, group in zip(self.base_lrs, self.optimizer.param_groups)]
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

