"""``torch.autograd``'s path: :func:`grad`, and re-exports of ``no_grad``, ``enable_grad``, ``set_grad_enabled``,
``detect_anomaly`` and ``Function``.

:func:`grad` returns the gradients of ``outputs`` with respect to ``inputs`` without touching any tensor's
``.grad``: it runs the ordinary ``backward`` and puts every ``.grad`` it reached back as it was. First-order only:
``create_graph=True`` (gradients that are themselves differentiable) is not supported, since ``backward`` here
computes on arrays with recording off.
"""

from __future__ import annotations

from typing import Any

from tinygrad_rnn.tensor import (
    Function,
    Tensor,
    _topological_order,
    detect_anomaly,
    enable_grad,
    no_grad,
    set_grad_enabled,
)

__all__ = ["Function", "detect_anomaly", "enable_grad", "grad", "no_grad", "set_grad_enabled"]


def _as_list(x: Any) -> list[Any]:
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _reached(outputs: list[Tensor]) -> list[Tensor]:
    """Every tensor whose ``.grad`` a backward from ``outputs`` may write: the leaves under them, and the
    outputs themselves when they are leaves."""
    seen: dict[int, Tensor] = {}
    for out in outputs:
        if out._ctx is None:
            seen[id(out)] = out
            continue
        for fn in _topological_order(out._ctx):
            for parent in fn.parents or ():
                if isinstance(parent, Tensor):
                    seen[id(parent)] = parent
    return list(seen.values())


def grad(outputs: Any, inputs: Any, grad_outputs: Any = None, retain_graph: bool | None = None,
         create_graph: bool = False, allow_unused: bool | None = None) -> tuple[Tensor | None, ...]:
    """``torch.autograd.grad``: the sum over ``outputs`` of ``grad_output · ∂output/∂input``, for each input.

    Args:
        outputs: a tensor or a sequence of tensors.
        inputs: a tensor or a sequence of tensors that require grad (leaves, or tensors on the tape).
        grad_outputs: one gradient per output (None: 1 for a one-element output).
        retain_graph: keep the graph for another backward (default: ``create_graph``, i.e. False).
        create_graph: must be False (see the module's note).
        allow_unused: without it, an input the outputs do not depend on raises, as in PyTorch.

    Returns:
        A tuple with one gradient per input (None for an unused input when ``allow_unused``).

    Raises:
        NotImplementedError: ``create_graph=True``.
        RuntimeError: an input that does not require grad, or an unused input without ``allow_unused``.
    """
    if create_graph:
        raise NotImplementedError("autograd.grad: create_graph=True (higher-order gradients) is not supported here; "
                                  "backward computes on arrays with recording off")
    outs, ins = _as_list(outputs), _as_list(inputs)
    gouts = [None] * len(outs) if grad_outputs is None else _as_list(grad_outputs)
    if len(gouts) != len(outs):
        raise RuntimeError(f"autograd.grad: {len(outs)} outputs but {len(gouts)} grad_outputs")
    for i, t in enumerate(ins):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise RuntimeError(f"autograd.grad: input {i} does not require grad")
    keep = bool(retain_graph)
    saved = {id(t): (t, t.grad) for t in _reached(outs) + ins}
    retained_before = {}
    for t in ins:
        if t._ctx is not None:  # a non-leaf input: ask backward to keep its gradient
            ctx = t._ctx
            retained_before[id(t)] = (ctx, None if ctx.retained is None else dict(ctx.retained))
            t.retain_grad()
    try:
        for t, _ in saved.values():
            t.grad = None
        for out, g in zip(outs, gouts, strict=False):
            if out.requires_grad:
                out.backward(g, retain_graph=True if len(outs) > 1 else keep)
        results = tuple(t.grad for t in ins)
    finally:
        for t, g in saved.values():
            t.grad = g
        for ctx, retained in retained_before.values():
            ctx.retained = retained
    if len(outs) > 1 and not keep:
        for out in outs:
            if out._ctx is not None:
                for fn in _topological_order(out._ctx):
                    fn.release()
    if not allow_unused:
        for i, r in enumerate(results):
            if r is None:
                raise RuntimeError(f"autograd.grad: input {i} was not used in the graph; pass allow_unused=True")
    return results
