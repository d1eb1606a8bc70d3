"""L-BFGS (``torch.optim.LBFGS``), with an optional strong-Wolfe line search."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

from tinygrad_rnn.backend import get_array_module
from tinygrad_rnn.optim.optimizer import (
    COUNT,
    Optimizer,
    OptimizerError,
    _as_count,
    _as_param_array,
    check_number,
)
from tinygrad_rnn.tensor import Tensor, enable_grad, no_grad

__all__ = ["LBFGS"]


def _cubic_interpolate(x1: float, f1: float, g1: float, x2: float, f2: float, g2: float,
                       bounds: tuple[float, float] | None = None) -> float:
    """The minimizer of the cubic through (x1, f1, g1), (x2, f2, g2), clamped to ``bounds``.

    Nocedal & Wright, "Numerical Optimization" (2nd ed., 2006), eq. 3.59.
    """
    xmin_bound, xmax_bound = bounds if bounds is not None else (min(x1, x2), max(x1, x2))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 * d1 - g1 * g2
    if d2_square >= 0:
        d2 = math.sqrt(d2_square)
        if x1 <= x2:
            min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        else:
            min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        return min(max(min_pos, xmin_bound), xmax_bound)
    return (xmin_bound + xmax_bound) / 2.0


def _strong_wolfe(obj_func: Callable[[Any, float, Any], tuple[float, Any]], x: Any, t: float, d: Any, f: float,
                  g: Any, gtd: float, c1: float = 1e-4, c2: float = 0.9, tolerance_change: float = 1e-9,
                  max_ls: int = 25) -> tuple[float, Any, float, int]:
    """Line search for a step ``t`` along ``d`` meeting the strong Wolfe conditions
    ``f(x + t d) <= f + c1 t gtd`` and ``|g(x + t d)·d| <= -c2 gtd``: bracketing, then zoom by cubic
    interpolation (Nocedal & Wright, 2006, algorithms 3.5 and 3.6; the same steps as PyTorch's, which
    follows Schmidt's minFunc). Returns ``(f_new, g_new, t, evaluations)``.
    """
    xp = get_array_module(d)
    d_norm = float(xp.abs(d).max())
    g = g.copy()
    f_new, g_new = obj_func(x, t, d)
    ls_func_evals = 1
    gtd_new = float(g_new @ d)

    t_prev, f_prev, g_prev, gtd_prev = 0.0, f, g, gtd
    done = False
    ls_iter = 0
    bracket: list[float] = []
    bracket_f: list[float] = []
    bracket_g: list[Any] = []
    bracket_gtd: list[float] = []
    while ls_iter < max_ls:
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new.copy()], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new.copy()], [gtd_prev, gtd_new]
            break
        # extrapolate
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        tmp = t
        t = _cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds=(min_step, max_step))
        t_prev, f_prev, g_prev, gtd_prev = tmp, f_new, g_new.copy(), gtd_new
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = float(g_new @ d)
        ls_iter += 1
    if ls_iter == max_ls:  # reached the evaluation budget while extrapolating
        bracket, bracket_f, bracket_g = [0.0, t], [f, f_new], [g, g_new]

    # zoom: shrink the bracket until a point meets the Wolfe conditions
    insuf_progress = False
    low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = _cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0], bracket[1], bracket_f[1], bracket_gtd[1])
        # too close to a bracket end with too little progress: move away from it
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insuf_progress or t >= max(bracket) or t <= min(bracket):
                t = max(bracket) - eps if abs(t - max(bracket)) < abs(t - min(bracket)) else min(bracket) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = float(g_new @ d)
        ls_iter += 1
        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low_pos]:
            bracket[high_pos], bracket_f[high_pos] = t, f_new
            bracket_g[high_pos], bracket_gtd[high_pos] = g_new.copy(), gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:
                bracket[high_pos], bracket_f[high_pos] = bracket[low_pos], bracket_f[low_pos]
                bracket_g[high_pos], bracket_gtd[high_pos] = bracket_g[low_pos], bracket_gtd[low_pos]
            bracket[low_pos], bracket_f[low_pos] = t, f_new
            bracket_g[low_pos], bracket_gtd[low_pos] = g_new.copy(), gtd_new
    return bracket_f[low_pos], bracket_g[low_pos], bracket[low_pos], ls_func_evals


# LBFGS's state lives on the first parameter: name -> kind
_SCALAR, _VECTOR, _VECTORS, _SCALARS = "scalar", "vector", "vectors", "scalars"


class LBFGS(Optimizer):
    """L-BFGS (Liu & Nocedal, 1989, "On the limited memory BFGS method for large scale optimization";
    Nocedal & Wright, 2006, algorithm 7.4), as ``torch.optim.LBFGS`` (after Schmidt's minFunc).

    One ``step(closure)`` runs up to ``max_iter`` iterations on all parameters flattened into one vector
    ``x`` with gradient ``g``. Each iteration picks a direction ``d = -H g`` by the two-loop recursion over
    the last ``history_size`` pairs ``s = x_{k+1} - x_k``, ``y = g_{k+1} - g_k`` (kept when ``y·s > 1e-10``;
    the initial ``H = (y·s)/(y·y)``, 1 at first), then moves ``x ← x + t d``: ``t = lr`` (the first
    iteration ever: ``t = lr·min(1, 1/‖g‖₁)``), or the step of a strong-Wolfe line search. It stops at
    ``max(|g|) <= tolerance_grad``, a step or loss change below ``tolerance_change``, ``max_iter``
    iterations or ``max_eval`` closure calls.

    Args:
        params: Tensors (one group only; all on one device).
        lr: >= 0 (default 1). max_iter: >= 1 (default 20). max_eval: >= 1 (default ``max_iter * 5 // 4``).
        tolerance_grad: >= 0 (default 1e-7). tolerance_change: >= 0 (default 1e-9).
        history_size: >= 1 (default 100). line_search_fn: None or ``'strong_wolfe'``.

    ``step(closure)`` needs the closure (it evaluates the model several times) and returns the loss of its
    first evaluation.

    Raises:
        OptimizerError: bad params, several parameter groups, an option out of range, ``step()`` without
            a closure.
    """

    _lbfgs_state: ClassVar[dict[str, str]] = {"func_evals": COUNT, "n_iter": COUNT, "d": _VECTOR, "t": _SCALAR,
                    "old_dirs": _VECTORS,
                    "old_stps": _VECTORS, "ro": _SCALARS, "H_diag": _SCALAR, "prev_flat_grad": _VECTOR,
                    "prev_loss": _SCALAR, "al": _SCALARS}

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]], lr: float = 1.0, max_iter: int = 20,
                 max_eval: int | None = None, tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9,
                 history_size: int = 100, line_search_fn: str | None = None):
        if max_eval is None and isinstance(max_iter, int) and not isinstance(max_iter, bool):
            max_eval = max_iter * 5 // 4
        super().__init__(params, {"lr": lr, "max_iter": max_iter, "max_eval": max_eval,
                                      "tolerance_grad": tolerance_grad,
                                      "tolerance_change": tolerance_change, "history_size": history_size,
                                      "line_search_fn": line_search_fn})
        if len(self.param_groups) != 1:
            raise OptimizerError(f"LBFGS: supports one parameter group only, got {len(self.param_groups)}")
        devices = {p.device for p in self._params}
        dtypes = {p.dtype for p in self._params}
        if len(devices) != 1 or len(dtypes) != 1:
            raise OptimizerError(f"LBFGS: all parameters must share one device and one dtype, got devices "
                                 f"{sorted(devices)} and dtypes {sorted(map(str, dtypes))}")

    @property
    def _params(self) -> list[Tensor]:
        return self.param_groups[0]["params"]

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        if self.param_groups:
            raise OptimizerError("LBFGS: supports one parameter group only (no add_param_group)")
        super().add_param_group(param_group)

    def _check_options(self, group: Mapping[str, Any]) -> None:
        check_number("LBFGS", "lr", group["lr"])
        check_number("LBFGS", "max_iter", group["max_iter"], 1, integer=True)
        check_number("LBFGS", "max_eval", group["max_eval"], 1, integer=True)
        check_number("LBFGS", "tolerance_grad", group["tolerance_grad"])
        check_number("LBFGS", "tolerance_change", group["tolerance_change"])
        check_number("LBFGS", "history_size", group["history_size"], 1, integer=True)
        if group["line_search_fn"] not in (None, "strong_wolfe"):
            raise OptimizerError(f"LBFGS: line_search_fn must be None or 'strong_wolfe', got "
                                 f"{group['line_search_fn']!r}")

    # ------------------------------------------------------------------ flat views of the parameters
    def _numel(self) -> int:
        return sum(int(p.array.size) for p in self._params)

    def _gather_flat_grad(self) -> Any:
        xp = get_array_module(self._params[0].array)
        views = [xp.zeros(p.array.size, dtype=p.dtype) if p.grad is None else self._grad(p).reshape(-1)
                 for p in self._params]
        return xp.concatenate(views)

    def _add_grad(self, step_size: float, update: Any) -> None:
        offset = 0
        for p in self._params:
            n = int(p.array.size)
            p.array += step_size * update[offset:offset + n].reshape(p.shape)
            offset += n

    def _directional_evaluate(self, closure: Callable[[], Any], x: list[Any], t: float,
                              d: Any) -> tuple[float, Any]:
        self._add_grad(t, d)
        with enable_grad():
            loss = float(closure())
        flat_grad = self._gather_flat_grad()
        for p, saved in zip(self._params, x, strict=False):
            p.array[...] = saved
        return loss, flat_grad

    # ------------------------------------------------------------------ step
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Run up to ``max_iter`` L-BFGS iterations; ``closure`` re-evaluates the model and returns the loss.

        Returns:
            The loss of the first closure call (before this step's updates).

        Raises:
            OptimizerError: no closure given.
        """
        if closure is None or not callable(closure):
            raise OptimizerError("LBFGS.step: needs a closure that re-evaluates the model and returns the loss "
                                 f"(it is called several times per step), got {closure!r}")
        with no_grad():
            return self._step(closure)

    def _step(self, closure: Callable[[], Any]) -> Any:
        group = self.param_groups[0]
        lr, max_iter, max_eval = float(group["lr"]), group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        line_search_fn, history_size = group["line_search_fn"], group["history_size"]
        xp = get_array_module(self._params[0].array)

        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        with enable_grad():
            orig_loss = closure()
        loss = float(orig_loss)
        current_evals = 1
        state["func_evals"] += 1

        flat_grad = self._gather_flat_grad()
        if float(xp.abs(flat_grad).max()) <= tolerance_grad:  # already optimal
            return orig_loss

        d: Any = state.get("d")
        t: Any = state.get("t")
        old_dirs: Any = state.get("old_dirs")
        old_stps: Any = state.get("old_stps")
        ro: Any = state.get("ro")
        H_diag: Any = state.get("H_diag")
        prev_flat_grad: Any = state.get("prev_flat_grad")
        prev_loss: Any = state.get("prev_loss")

        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1

            # the direction: steepest descent at first, then the two-loop recursion
            if state["n_iter"] == 1:
                d = -flat_grad
                old_dirs, old_stps, ro = [], [], []
                H_diag = 1.0
            else:
                y = flat_grad - prev_flat_grad
                s = d * t
                ys = float(y @ s)
                if ys > 1e-10:  # keep the pair only if the curvature condition holds
                    if len(old_dirs) == history_size:
                        old_dirs.pop(0)
                        old_stps.pop(0)
                        ro.pop(0)
                    old_dirs.append(y)
                    old_stps.append(s)
                    ro.append(1.0 / ys)
                    H_diag = ys / float(y @ y)
                num_old = len(old_dirs)
                if "al" not in state:
                    state["al"] = [None] * history_size
                al = state["al"]
                q = -flat_grad
                for i in range(num_old - 1, -1, -1):
                    al[i] = float(old_stps[i] @ q) * ro[i]
                    q -= al[i] * old_dirs[i]
                d = r = q * H_diag
                for i in range(num_old):
                    be_i = float(old_dirs[i] @ r) * ro[i]
                    r += (al[i] - be_i) * old_stps[i]

            if prev_flat_grad is None:
                prev_flat_grad = flat_grad.copy()
            else:
                prev_flat_grad[...] = flat_grad
            prev_loss = loss

            # the step length
            if state["n_iter"] == 1:
                t = min(1.0, 1.0 / float(xp.abs(flat_grad).sum())) * lr
            else:
                t = lr
            gtd = float(flat_grad @ d)
            if gtd > -tolerance_change:  # not a descent direction
                break

            ls_func_evals = 0
            if line_search_fn == "strong_wolfe":
                x_init = [p.array.copy() for p in self._params]

                def obj_func(x: list[Any], t: float, d: Any) -> tuple[float, Any]:
                    return self._directional_evaluate(closure, x, t, d)

                loss, flat_grad, t, ls_func_evals = _strong_wolfe(obj_func, x_init, t, d, loss, flat_grad, gtd,
                                                                  max_ls=max_eval - current_evals)
                self._add_grad(t, d)
                opt_cond = float(xp.abs(flat_grad).max()) <= tolerance_grad
            else:
                self._add_grad(t, d)
                opt_cond = False
                if n_iter != max_iter:  # re-evaluate unless this is the last iteration
                    with enable_grad():
                        loss = float(closure())
                    flat_grad = self._gather_flat_grad()
                    opt_cond = float(xp.abs(flat_grad).max()) <= tolerance_grad
                    ls_func_evals = 1
            current_evals += ls_func_evals
            state["func_evals"] += ls_func_evals

            if n_iter == max_iter or current_evals >= max_eval or opt_cond:
                break
            if float(xp.abs(d * t).max()) <= tolerance_change:
                break
            if abs(loss - prev_loss) < tolerance_change:
                break

        state.update(d=d, t=t, old_dirs=old_dirs, old_stps=old_stps, ro=ro, H_diag=H_diag,
                     prev_flat_grad=prev_flat_grad, prev_loss=prev_loss)
        return orig_loss

    # ------------------------------------------------------------------ state dicts
    def _load_param_state(self, p: Tensor, group: Mapping[str, Any], saved: Any, where: str) -> dict[str, Any]:
        if not isinstance(saved, Mapping):
            raise OptimizerError(f"LBFGS.load_state_dict: {where} must be a dict, got {type(saved).__name__}")
        if saved and p is not self._params[0]:
            raise OptimizerError(f"LBFGS.load_state_dict: {where}: LBFGS keeps its state on the first "
                                 "parameter only")
        unknown = sorted(str(k) for k in saved if k not in self._lbfgs_state)
        if unknown:
            raise OptimizerError(f"LBFGS.load_state_dict: {where} has unknown entries {unknown} (expected some "
                                 f"of {sorted(self._lbfgs_state)})")
        n = self._numel()
        out: dict[str, Any] = {}
        for key, value in saved.items():
            kind, at = self._lbfgs_state[key], f"{where}[{key!r}]"
            if kind == COUNT:
                out[key] = _as_count("LBFGS", at, value)
            elif value is None:
                out[key] = None
            elif kind == _VECTOR:
                out[key] = _as_param_array("LBFGS", at, value, p, (n,))
            elif kind == _VECTORS:
                if not isinstance(value, (list, tuple)):
                    raise OptimizerError(f"LBFGS.load_state_dict: {at} must be a list of arrays of shape ({n},), "
                                         f"got {type(value).__name__}")
                out[key] = [_as_param_array("LBFGS", f"{at}[{i}]", v, p, (n,)) for i, v in enumerate(value)]
            elif kind == _SCALARS:
                if not isinstance(value, (list, tuple)):
                    raise OptimizerError(f"LBFGS.load_state_dict: {at} must be a list of numbers, got "
                                         f"{type(value).__name__}")
                out[key] = [None if v is None else self._scalar(f"{at}[{i}]", v) for i, v in enumerate(value)]
            else:
                out[key] = self._scalar(at, value)
        lengths = {len(out[k]) for k in ("old_dirs", "old_stps", "ro") if out.get(k) is not None}
        if len(lengths) > 1:
            raise OptimizerError(f"LBFGS.load_state_dict: {where}: old_dirs, old_stps and ro must have one length, "
                                 f"got {sorted(lengths)}")
        n_old = max(lengths, default=0)
        if n_old > group["history_size"]:
            raise OptimizerError(f"LBFGS.load_state_dict: {where} holds {n_old} history pairs, more than this "
                                 f"group's history_size={group['history_size']}")
        if out.get("al") is not None and len(out["al"]) < group["history_size"]:
            raise OptimizerError(f"LBFGS.load_state_dict: {where}['al'] has {len(out['al'])} entries, expected "
                                 f"history_size={group['history_size']}")
        return out

    @staticmethod
    def _scalar(where: str, value: Any) -> float:
        try:
            x = float(value.item() if hasattr(value, "item") else value)
        except (TypeError, ValueError):
            raise OptimizerError(f"LBFGS.load_state_dict: {where} must be a number, got {value!r}") from None
        return x
