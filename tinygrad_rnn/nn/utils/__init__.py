"""``tinygrad_rnn.nn.utils``: PyTorch's ``torch.nn.utils`` (``parameters_to_vector``, ``vector_to_parameters``,
``clip_grad_norm_``, ``clip_grad_value_``, ``get_total_norm``, ``clip_grads_with_norm_``) and :mod:`.rnn`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tinygrad_rnn import ops
from tinygrad_rnn.nn.utils import rnn
from tinygrad_rnn.tensor import OpError, Tensor, no_grad

__all__ = ["parameters_to_vector", "rnn", "vector_to_parameters"]

from tinygrad_rnn.nn.utils.clip_grad import (  # gradient clipping, in clip_grad.py
    clip_grad_norm_,
    clip_grad_value_,
    clip_grads_with_norm_,
    get_total_norm,
)

__all__ += ["clip_grad_norm_", "clip_grad_value_", "clip_grads_with_norm_", "get_total_norm"]


def _tensors(name: str, parameters: Any) -> list[Tensor]:
    if isinstance(parameters, Tensor):
        return [parameters]
    params = list(parameters)
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(f"{name}: expected an iterable of Tensors, item {i} is {type(p).__name__}")
    return params


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """All parameters flattened and concatenated into one 1-D tensor (differentiable, as PyTorch's).

    Raises:
        OpError: the parameters are on different devices.
    """
    params = _tensors("parameters_to_vector", parameters)
    if not params:
        raise OpError("parameters_to_vector: expected at least one parameter, got none")
    return ops.concat([p.reshape(-1) for p in params], 0)


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copy consecutive slices of the 1-D ``vec`` into the parameters (in place, not recorded).

    Raises:
        TypeError: ``vec`` is not a Tensor. OpError: ``vec`` is not 1-D or its length differs from the
            total number of parameter elements.
    """
    if not isinstance(vec, Tensor):
        raise TypeError(f"vector_to_parameters: expected vec to be a Tensor, got {type(vec).__name__}")
    params = _tensors("vector_to_parameters", parameters)
    total = sum(int(p.array.size) for p in params)
    if vec.ndim != 1 or vec.shape[0] != total:
        raise OpError(f"vector_to_parameters: expected a 1-D vector of {total} elements, got shape {tuple(vec.shape)}")
    offset = 0
    with no_grad():  # in-place copies, counted by each parameter's version counter
        for p in params:
            n = int(p.array.size)
            p.copy_(vec.array[offset:offset + n].reshape(p.shape))
            offset += n
