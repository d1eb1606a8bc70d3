"""Recurrent cells as objects: each says what parameters it has, what it prepares once per sequence, and
its step, written from primitive ops. The layer machinery (:class:`~tinygrad_rnn.nn.RNNBase`, stacking,
bidirectional, ``lengths``, batch-first, unbatched input, initial states, dropout, PyTorch's parameter
names; and :class:`~tinygrad_rnn.nn.RNNCellBase`, one step) is written once in ``recurrent.py`` and runs any
cell. To add a cell, subclass :class:`RecurrentCell` (see the README's "Your own cell" and
``examples/custom_cell.py``).

The step equations, for input ``x``, previous hidden state ``h`` and (LSTM) cell state ``c``::

    Elman: h' = act(W_ih x + b_ih + W_hh h + b_hh)                        act = tanh or relu (Elman 1990)
    LSTM:  i, f, g, o = σ(·), σ(·), tanh(·), σ(·) of  W_ih x + b_ih + W_hh h + b_hh  (split in 4)
           c' = f ⊙ c + i ⊙ g;   h' = o ⊙ tanh(c')      (Hochreiter & Schmidhuber 1997; forget gate of
                                                         Gers, Schmidhuber & Cummins 2000)
    GRU:   r = σ(W_ir x + b_ir + W_hr h + b_hr);  z = σ(W_iz x + b_iz + W_hz h + b_hz)
           n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn));  h' = (1 - z) ⊙ n + z ⊙ h   (Cho et al. 2014,
                                                                                       PyTorch's form)
    Peephole LSTM: as the LSTM, but the gates also see the cell state through diagonal weights
           i = σ(· + w_ci ⊙ c),  f = σ(· + w_cf ⊙ c),  o = σ(· + w_co ⊙ c')    (Gers, Schraudolph &
                                                                                Schmidhuber 2002)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tinygrad_rnn import ops
from tinygrad_rnn.tensor import Tensor, zeros_like

__all__ = ["RecurrentCell", "State", "Elman", "LSTM", "GRU", "PeepholeLSTM", "input_projection"]

State = tuple[Tensor, ...]  # (h,) or, for the LSTMs, (h, c); the first one is the output
Params = dict[str, Tensor]


def input_projection(x: Tensor, weight: Tensor, *biases: Tensor | None) -> Tensor:
    """``x Wᵀ + Σ biases`` for x (..., in), as one ``addmm`` over all leading axes (all time steps at once)."""
    present = [b for b in biases if b is not None]
    lead = x.shape[:-1]
    x2 = x.reshape(-1, x.shape[-1])
    if not present:
        xw = x2 @ weight.T
    else:
        bias = present[0]
        for b in present[1:]:
            bias = bias + b
        xw = ops.addmm(bias, x2, weight.T)
    return xw.reshape(*lead, weight.shape[0])


class RecurrentCell:
    """A recurrent cell: its parameters' shapes, its once-per-sequence preparation, and its step.

    A cell holds no tensors: a layer (:class:`~tinygrad_rnn.nn.RNNBase`) or a one-step module
    (:class:`~tinygrad_rnn.nn.RNNCellBase`) creates the parameters from :meth:`parameter_shapes` (drawn
    from U(-1/√H, 1/√H), as PyTorch does) and hands them to :meth:`prepare` and :meth:`step` as a dict
    by their short names (``"weight_ih"``...). A subclass sets :attr:`gates` and :attr:`state_names`
    and writes :meth:`step`; it overrides :meth:`parameter_shapes` for parameters beyond the standard
    four, and :meth:`prepare` when the default (below) does not fit.

    Attributes:
        gates: H-row blocks stacked in ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``.
        state_names: the state's tensors, output first: ``("h",)``, or ``("h", "c")`` for an LSTM. A layer
            takes and returns one tensor for a one-tensor state, a tuple otherwise.
    """

    gates: int = 1
    state_names: tuple[str, ...] = ("h",)

    def parameter_shapes(self, input_size: int, hidden_size: int, bias: bool) -> dict[str, tuple[int, ...]]:
        """Name -> shape of each parameter, in PyTorch's order. Default: ``weight_ih`` (gates·H, I),
        ``weight_hh`` (gates·H, H) and, with ``bias``, ``bias_ih`` and ``bias_hh`` (gates·H,)."""
        rows = self.gates * hidden_size
        shapes: dict[str, tuple[int, ...]] = {"weight_ih": (rows, input_size), "weight_hh": (rows, hidden_size)}
        if bias:
            shapes.update(bias_ih=(rows,), bias_hh=(rows,))
        return shapes

    def prepare(self, x: Tensor, p: Params) -> tuple[Sequence[Any], Params]:
        """Work done once per sequence, before the time loop.

        Args:
            x: the whole input, (T, B, I).
            p: the parameters, by short name.

        Returns:
            ``(inputs, p)``: the T per-step inputs :meth:`step` receives, and the dict it receives. The
            default computes the input projection ``x W_ihᵀ + b_ih + b_hh`` of all steps in one matmul
            (biases that are absent are left out) and, when ``weight_hh`` is a matrix, adds
            ``p["weight_hh_t"]`` = W_hhᵀ, transposed once rather than at every step.
        """
        inputs = input_projection(x, p["weight_ih"], p.get("bias_ih"), p.get("bias_hh")).unbind(0)
        w_hh = p.get("weight_hh")
        return inputs, p if w_hh is None or w_hh.ndim != 2 else {**p, "weight_hh_t": w_hh.T}

    def step(self, x_t: Any, state: State, p: Params) -> State:
        """One time step: the new state from this step's input (an entry of ``prepare``'s inputs), the
        previous state (B, H) each, and the prepared parameters."""
        raise NotImplementedError(f"{type(self).__name__} must define step()")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Elman(RecurrentCell):
    """Elman's RNN (Elman 1990): ``h' = act(W_ih x + b_ih + W_hh h + b_hh)``, act = tanh or relu.

    Raises:
        ValueError: ``nonlinearity`` is neither ``'tanh'`` nor ``'relu'``.
    """

    def __init__(self, nonlinearity: str = "tanh"):
        activations = {"tanh": ops.tanh, "relu": ops.relu}
        if nonlinearity not in activations:
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        self.activation = activations[nonlinearity]

    def step(self, x_t: Tensor, state: State, p: Params) -> State:
        return (self.activation(ops.addmm(x_t, state[0], p["weight_hh_t"])),)

    def __repr__(self) -> str:
        return f"Elman({self.nonlinearity!r})"


class LSTM(RecurrentCell):
    """The LSTM cell, gates ``i, f, g, o`` stacked as in ``torch.nn.LSTM``; 11 nodes per step."""

    gates = 4
    state_names = ("h", "c")

    def step(self, x_t: Tensor, state: State, p: Params) -> State:
        h, c = state
        H = h.shape[-1]
        a_if, a_g, a_o = ops.split(ops.addmm(x_t, h, p["weight_hh_t"]), [2 * H, H, H], axis=-1)
        i, f = ops.chunk(ops.sigmoid(a_if), 2, axis=-1)  # i and f are adjacent: one sigmoid for both
        c_new = f * c + i * ops.tanh(a_g)
        return ops.sigmoid(a_o) * ops.tanh(c_new), c_new


class GRU(RecurrentCell):
    """The GRU cell in PyTorch's form, gates ``r, z, n``; 10 nodes per step.

    The r and z gates add their input part outside the recurrent matmul, the n gate inside ``r ⊙ (·)``. So
    :meth:`prepare` puts the input projection's r, z columns (plus b_hr, b_hz) and b_hn into the
    constant ``c`` that the step's one ``addmm`` adds to ``h W_hhᵀ``, and keeps x_n = W_in x + b_in apart.
    """

    gates = 3

    def prepare(self, x: Tensor, p: Params) -> tuple[Sequence[Any], Params]:
        xw = input_projection(x, p["weight_ih"], p.get("bias_ih"))
        H = xw.shape[-1] // 3
        x_rz, x_n = ops.split(xw, [2 * H, H], axis=-1)
        if "bias_hh" in p:
            b_rz, b_n = ops.split(p["bias_hh"], [2 * H, H])
            x_rz, b_n = x_rz + b_rz, ops.expand(b_n, x_n.shape)
        else:
            b_n = zeros_like(x_n)
        c = ops.concat([x_rz, b_n], axis=-1)
        return list(zip(c.unbind(0), x_n.unbind(0), strict=True)), {**p, "weight_hh_t": p["weight_hh"].T}

    def step(self, x_t: tuple[Tensor, Tensor], state: State, p: Params) -> State:
        c, x_n = x_t
        h = state[0]
        H = h.shape[-1]
        a_rz, h_n = ops.split(ops.addmm(c, h, p["weight_hh_t"]), [2 * H, H], axis=-1)  # h_n = W_hn h + b_hn
        r, z = ops.chunk(ops.sigmoid(a_rz), 2, axis=-1)  # r and z are adjacent: one sigmoid for both
        n = ops.tanh(x_n + r * h_n)
        return (n + z * (h - n),)  # = (1 - z) ⊙ n + z ⊙ h


class PeepholeLSTM(LSTM):
    """The LSTM with peephole connections of Gers, Schraudolph & Schmidhuber (2002), "Learning precise
    timing with LSTM recurrent networks", JMLR 3:115-143: the gates also see the cell state, through
    diagonal weights ``weight_ci``, ``weight_cf``, ``weight_co`` of shape (H,)::

        i = σ(W_ii x + b_ii + W_hi h + b_hi + w_ci ⊙ c)      f = σ(… + w_cf ⊙ c)      g = tanh(…)
        c' = f ⊙ c + i ⊙ g
        o = σ(W_io x + b_io + W_ho h + b_ho + w_co ⊙ c')      h' = o ⊙ tanh(c')

    The input and forget gates peek at the previous cell state, the output gate at the new one.
    """

    def parameter_shapes(self, input_size: int, hidden_size: int, bias: bool) -> dict[str, tuple[int, ...]]:
        shapes = super().parameter_shapes(input_size, hidden_size, bias)
        shapes.update(weight_ci=(hidden_size,), weight_cf=(hidden_size,), weight_co=(hidden_size,))
        return shapes

    def step(self, x_t: Tensor, state: State, p: Params) -> State:
        h, c = state
        a_i, a_f, a_g, a_o = ops.chunk(ops.addmm(x_t, h, p["weight_hh_t"]), 4, axis=-1)
        i = ops.sigmoid(a_i + p["weight_ci"] * c)
        f = ops.sigmoid(a_f + p["weight_cf"] * c)
        c_new = f * c + i * ops.tanh(a_g)
        o = ops.sigmoid(a_o + p["weight_co"] * c_new)
        return o * ops.tanh(c_new), c_new
