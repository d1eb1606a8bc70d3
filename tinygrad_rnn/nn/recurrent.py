"""Recurrent cells and layers (RNN, LSTM, GRU), composed only of primitive ops.

Nothing here has a backward of its own: each time step is a handful of ``addmm`` (``c + a @ b``), ``+``,
``*``, ``sigmoid``, ``tanh`` and ``split`` nodes on the tape, so backpropagation through time is ``loss.backward()``.

Interface and parameter layout follow PyTorch exactly (``torch.nn.RNN/LSTM/GRU`` and their cells), so a
PyTorch state dict loads and gives the same numbers. Per layer ``k`` and direction (suffix ``_reverse`` for
the backward direction of a bidirectional layer):

=====================  =======================  ================================================
name                   shape                    meaning
=====================  =======================  ================================================
``weight_ih_l{k}``     (gates·H, input of k)    input-to-hidden weights, gates stacked row-wise
``weight_hh_l{k}``     (gates·H, H)             hidden-to-hidden weights
``bias_ih_l{k}``       (gates·H,)               input bias
``bias_hh_l{k}``       (gates·H,)               hidden bias
=====================  =======================  ================================================

with gates = 1 (RNN), 4 in the order ``i, f, g, o`` (LSTM), 3 in the order ``r, z, n`` (GRU). The step
equations, for input ``x``, previous hidden state ``h`` and (LSTM) cell state ``c`` (Hochreiter &
Schmidhuber 1997 with the forget gate of Gers et al. 2000; GRU of Cho et al. 2014 in PyTorch's form)::

    RNN:  h' = act(W_ih x + b_ih + W_hh h + b_hh)                         act = tanh or relu
    LSTM: i, f, g, o = σ(·), σ(·), tanh(·), σ(·) of  W_ih x + b_ih + W_hh h + b_hh  (split in 4)
          c' = f ⊙ c + i ⊙ g;   h' = o ⊙ tanh(c')
    GRU:  r = σ(W_ir x + b_ir + W_hr h + b_hr);  z = σ(W_iz x + b_iz + W_hz h + b_hz)
          n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn));  h' = (1 - z) ⊙ n + z ⊙ h

A layer computes the input projection ``x W_ihᵀ + b`` of all time steps in one matmul before the time loop.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from tinygrad_rnn import functional as F
from tinygrad_rnn import ops
from tinygrad_rnn.backend import get_array_module, to_device, to_numpy
from tinygrad_rnn.nn.layers import uniform_parameter
from tinygrad_rnn.nn.module import Module
from tinygrad_rnn.tensor import DEFAULT_FLOAT, OpError, Tensor

__all__ = ["RNNCell", "LSTMCell", "GRUCell", "RNN", "LSTM", "GRU", "pad_sequences"]

State = tuple[Tensor, ...]  # (h,) or, for the LSTM, (h, c)


# --------------------------------------------------------------------------------------------------
# One time step of each cell. ``xw`` is the input projection x W_ihᵀ + b_ih of this step (for RNN and
# LSTM b_hh is folded into it too; for the GRU, the pair that _gru_inputs makes of it); ``w_hh_t`` is W_hhᵀ,
# transposed once per sequence.
# --------------------------------------------------------------------------------------------------


def _rnn_tanh_step(xw: Tensor, state: State, w_hh_t: Tensor, b_hh: Tensor | None) -> State:
    return (ops.tanh(ops.addmm(xw, state[0], w_hh_t)),)


def _rnn_relu_step(xw: Tensor, state: State, w_hh_t: Tensor, b_hh: Tensor | None) -> State:
    return (ops.relu(ops.addmm(xw, state[0], w_hh_t)),)


def _lstm_step(xw: Tensor, state: State, w_hh_t: Tensor, b_hh: Tensor | None) -> State:
    h, c = state
    H = h.shape[-1]
    a_if, a_g, a_o = ops.split(ops.addmm(xw, h, w_hh_t), [2 * H, H, H], axis=-1)
    i, f = ops.chunk(ops.sigmoid(a_if), 2, axis=-1)  # i and f are adjacent: one sigmoid for both
    c_new = f * c + i * ops.tanh(a_g)
    h_new = ops.sigmoid(a_o) * ops.tanh(c_new)
    return h_new, c_new


def _gru_step(xw: tuple[Tensor, Tensor], state: State, w_hh_t: Tensor, b_hh: Tensor | None) -> State:
    # xw = (c, x_n) from _gru_inputs: c = [W_ir x + b_ir + b_hr, W_iz x + b_iz + b_hz, b_hn] is what one addmm
    # adds to h W_hhᵀ, so its r and z columns are the gates' whole pre-activation; x_n = W_in x + b_in
    c, x_n = xw
    h = state[0]
    H = h.shape[-1]
    a_rz, h_n = ops.split(ops.addmm(c, h, w_hh_t), [2 * H, H], axis=-1)  # h_n = W_hn h + b_hn
    r, z = ops.chunk(ops.sigmoid(a_rz), 2, axis=-1)  # r and z are adjacent: one sigmoid for both
    n = ops.tanh(x_n + r * h_n)
    return (n + z * (h - n),)  # = (1 - z) ⊙ n + z ⊙ h


def _gru_inputs(xw: Tensor, b_hh: Tensor | None) -> tuple[Tensor, Tensor]:
    """``(c, x_n)`` for :func:`_gru_step` from the input projection xw (..., 3H) = x W_ihᵀ + b_ih, all steps.

    The r and z gates add their input part outside the matmul and the n gate inside ``r ⊙ (·)``, so the
    projection's r, z columns (plus b_hr, b_hz) go into the step's addmm and its n columns stay apart.
    """
    H = xw.shape[-1] // 3
    x_rz, x_n = ops.split(xw, [2 * H, H], axis=-1)
    if b_hh is None:
        b_n = Tensor._wrap(get_array_module(xw.array).zeros(x_n.shape, dtype=xw.dtype))
    else:
        b_rz, b_n = ops.split(b_hh, [2 * H, H])
        x_rz, b_n = x_rz + b_rz, ops.expand(b_n, x_n.shape)
    return ops.concat([x_rz, b_n], axis=-1), x_n


# mode -> (number of gates, step function, is b_hh folded into the input projection?)
_KINDS: dict[str, tuple[int, Callable[..., State], bool]] = {
    "RNN_TANH": (1, _rnn_tanh_step, True),
    "RNN_RELU": (1, _rnn_relu_step, True),
    "LSTM": (4, _lstm_step, True),
    "GRU": (3, _gru_step, False),
}


def _rnn_mode(nonlinearity: str) -> str:
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    return "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"


def _project(x: Tensor, w_ih: Tensor, b_ih: Tensor | None, b_hh: Tensor | None, fold_hh: bool) -> Tensor:
    """``x W_ihᵀ + b_ih (+ b_hh)`` for x (..., in), as one matmul over all leading axes."""
    lead = x.shape[:-1]
    x2 = x.reshape(-1, x.shape[-1])
    xw = x2 @ w_ih.T if b_ih is None else ops.addmm(b_ih + b_hh if fold_hh else b_ih, x2, w_ih.T)
    return xw.reshape(*lead, w_ih.shape[0])


# --------------------------------------------------------------------------------------------------
# Cells: one step, for a user-written time loop
# --------------------------------------------------------------------------------------------------


class _CellBase(Module):
    mode = "RNN_TANH"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, dtype: Any = DEFAULT_FLOAT,
                 device: str | None = None):
        super().__init__()
        if input_size <= 0 or hidden_size <= 0:
            raise ValueError(f"{type(self).__name__}: input_size and hidden_size must be positive, "
                             f"got {input_size} and {hidden_size}")
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        gates = _KINDS[self.mode][0]
        bound = 1 / math.sqrt(hidden_size)
        self.weight_ih = uniform_parameter((gates * hidden_size, input_size), bound, dtype, device)
        self.weight_hh = uniform_parameter((gates * hidden_size, hidden_size), bound, dtype, device)
        self.bias_ih = uniform_parameter((gates * hidden_size,), bound, dtype, device) if bias else None
        self.bias_hh = uniform_parameter((gates * hidden_size,), bound, dtype, device) if bias else None

    def _check_input(self, x: Tensor) -> bool:
        name = type(self).__name__
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise OpError(f"{name}: expected input of shape (batch, {self.input_size}) or ({self.input_size},), "
                          f"got {tuple(x.shape)}")
        return x.ndim == 2

    def _state(self, state: Tensor | None, x: Tensor, batched: bool, what: str) -> Tensor:
        batch = x.shape[0] if batched else None
        expected = (batch, self.hidden_size) if batched else (self.hidden_size,)
        if state is None:
            return Tensor._wrap(get_array_module(x.array).zeros(expected, dtype=self.weight_hh.dtype))
        if tuple(state.shape) != expected:
            raise OpError(f"{type(self).__name__}: expected {what} of shape {expected}, got {tuple(state.shape)}")
        return state

    def _step(self, x: Tensor, state: State) -> State:
        if x.ndim == 1:  # unbatched: a batch of one, so every product in the step is a matrix product
            return tuple(s.squeeze(0) for s in self._step(x.unsqueeze(0), tuple(s.unsqueeze(0) for s in state)))
        _, step, fold = _KINDS[self.mode]
        xw = _project(x, self.weight_ih, self.bias_ih, self.bias_hh, fold)
        if self.mode == "GRU":
            xw = _gru_inputs(xw, self.bias_hh)
        return step(xw, state, self.weight_hh.T, self.bias_hh)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")


class RNNCell(_CellBase):
    """One Elman RNN step: ``h' = act(W_ih x + b_ih + W_hh h + b_hh)``, act = tanh (default) or relu.

    Call: ``h' = cell(x, h=None)``; x (B, input_size) or (input_size,), h (B, hidden_size) or (hidden_size,),
    zeros when None. Parameters as ``torch.nn.RNNCell``.

    Raises:
        OpError: wrong input rank or feature size, or h of the wrong shape (expected and received shapes named).
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 dtype: Any = DEFAULT_FLOAT, device: str | None = None):
        object.__setattr__(self, "mode", _rnn_mode(nonlinearity))  # read by _CellBase.__init__
        object.__setattr__(self, "nonlinearity", nonlinearity)
        super().__init__(input_size, hidden_size, bias, dtype, device)

    def forward(self, x: Tensor, hx: Tensor | None = None) -> Tensor:
        batched = self._check_input(x)
        return self._step(x, (self._state(hx, x, batched, "hx"),))[0]


class LSTMCell(_CellBase):
    """One LSTM step (gates i, f, g, o as ``torch.nn.LSTMCell``): ``c' = f⊙c + i⊙g``, ``h' = o⊙tanh(c')``.

    Call: ``h', c' = cell(x, (h, c)=None)``; shapes as :class:`RNNCell`, zeros when the state is None.
    """

    mode = "LSTM"

    def forward(self, x: Tensor, hx: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        batched = self._check_input(x)
        h, c = (None, None) if hx is None else hx
        state = (self._state(h, x, batched, "h"), self._state(c, x, batched, "c"))
        h_new, c_new = self._step(x, state)
        return h_new, c_new


class GRUCell(_CellBase):
    """One GRU step in PyTorch's form (gates r, z, n): ``h' = (1 - z)⊙n + z⊙h``,
    ``n = tanh(W_in x + b_in + r⊙(W_hn h + b_hn))``.

    Call: ``h' = cell(x, h=None)``; shapes as :class:`RNNCell`.
    """

    mode = "GRU"

    def forward(self, x: Tensor, hx: Tensor | None = None) -> Tensor:
        batched = self._check_input(x)
        return self._step(x, (self._state(hx, x, batched, "hx"),))[0]


# --------------------------------------------------------------------------------------------------
# Layers: whole sequences, stacked and bidirectional, with variable lengths
# --------------------------------------------------------------------------------------------------


class _RecurrentLayer(Module):
    mode = "RNN_TANH"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 dtype: Any = DEFAULT_FLOAT, device: str | None = None):
        super().__init__()
        name = type(self).__name__
        if input_size <= 0 or hidden_size <= 0 or num_layers <= 0:
            raise ValueError(f"{name}: input_size, hidden_size and num_layers must be positive, "
                             f"got {input_size}, {hidden_size}, {num_layers}")
        if not 0 <= dropout < 1:
            raise ValueError(f"{name}: dropout must be in [0, 1), got {dropout}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout, self.bidirectional = bias, batch_first, dropout, bidirectional
        gates = _KINDS[self.mode][0]
        directions = 2 if bidirectional else 1
        bound = 1 / math.sqrt(hidden_size)
        suffixes = []
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * directions
            for direction in range(directions):
                sfx = f"_l{layer}" + ("_reverse" if direction else "")
                setattr(self, "weight_ih" + sfx, uniform_parameter((gates * hidden_size, layer_input), bound, dtype, device))
                setattr(self, "weight_hh" + sfx, uniform_parameter((gates * hidden_size, hidden_size), bound, dtype, device))
                if bias:
                    setattr(self, "bias_ih" + sfx, uniform_parameter((gates * hidden_size,), bound, dtype, device))
                    setattr(self, "bias_hh" + sfx, uniform_parameter((gates * hidden_size,), bound, dtype, device))
                suffixes.append(sfx)
        self._suffixes = suffixes

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _weights(self, sfx: str) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        return (getattr(self, "weight_ih" + sfx), getattr(self, "weight_hh" + sfx),
                getattr(self, "bias_ih" + sfx, None), getattr(self, "bias_hh" + sfx, None))

    # ---------------------------------------------------------------- input checks
    def _check_input(self, x: Tensor, lengths: Any) -> bool:
        name = type(self).__name__
        layout = "(B, T, I)" if self.batch_first else "(T, B, I)"
        if x.ndim not in (2, 3):
            raise OpError(f"{name}: expected input of rank 3 {layout} or rank 2 (T, I) unbatched, "
                          f"got shape {tuple(x.shape)}")
        if x.shape[-1] != self.input_size:
            expected = layout.replace("I)", f"{self.input_size})")
            raise OpError(f"{name}: expected input of shape {expected} or (T, {self.input_size}) unbatched "
                          f"(input_size={self.input_size}), got shape {tuple(x.shape)}")
        if x.dtype.kind != "f":
            raise OpError(f"{name}: expected a floating-point input, got dtype {x.dtype} "
                          "(integer ids go through nn.Embedding first)")
        if x.ndim == 2 and lengths is not None:
            raise OpError(f"{name}: lengths needs a batched input {layout}, got unbatched shape {tuple(x.shape)}")
        if x.shape[0 if x.ndim == 2 or not self.batch_first else 1] == 0:
            raise OpError(f"{name}: the sequence is empty (T = 0), got shape {tuple(x.shape)}")
        return x.ndim == 3

    def _initial_states(self, hx: Tensor | None, batch: int, batched: bool, like: Tensor, what: str) -> list[Tensor]:
        count = self.num_layers * self.num_directions
        expected = (count, batch, self.hidden_size) if batched else (count, self.hidden_size)
        if hx is None:
            zero = Tensor._wrap(get_array_module(like.array).zeros((batch, self.hidden_size), dtype=like.dtype))
            return [zero] * count
        if not isinstance(hx, Tensor):  # a NumPy/CuPy array or nested list: a constant initial state
            hx = Tensor(hx, dtype=like.dtype, device=like.device)
        if tuple(hx.shape) != expected:
            raise OpError(f"{type(self).__name__}: expected {what} of shape {expected} (num_layers*num_directions, "
                          f"{'batch, ' if batched else ''}hidden_size), got {tuple(hx.shape)}")
        if not batched:
            hx = hx.unsqueeze(1)
        return list(hx.unbind(0))

    def _mask(self, lengths: Any, steps: int, batch: int, like: Tensor) -> Any:
        """(T, B, 1) boolean mask of real steps, or None when every sequence has all T steps."""
        if lengths is None:
            return None
        name = type(self).__name__
        values = to_numpy(lengths.array if isinstance(lengths, Tensor) else lengths)
        values = np.asarray(values)
        if values.ndim != 1 or values.shape[0] != batch:
            raise OpError(f"{name}: expected lengths of shape ({batch},) (one per sequence), got {values.shape}")
        if values.dtype.kind not in "iuf" or (values.dtype.kind == "f" and not np.all(np.mod(values, 1) == 0)):
            raise OpError(f"{name}: lengths must be integers, got {values.tolist()} (dtype {values.dtype})")
        values = values.astype(np.int64)
        if values.min() < 1 or values.max() > steps:
            raise OpError(f"{name}: every length must lie in 1..T = 1..{steps}, got {values.tolist()}")
        if values.min() == steps:
            return None
        mask = (np.arange(steps)[:, None] < values[None, :])[:, :, None]
        return to_device(mask, like.device)

    # ---------------------------------------------------------------- the time loop
    def _run_direction(self, x: Tensor, sfx: str, state: State, reverse: bool, mask: Any) -> tuple[Tensor, State]:
        """Run one direction of one layer over x (T, B, in); returns outputs (T, B, H) and the final state."""
        _, step, fold = _KINDS[self.mode]
        w_ih, w_hh, b_ih, b_hh = self._weights(sfx)
        xw = _project(x, w_ih, b_ih, b_hh, fold)
        if self.mode == "GRU":  # the step's two inputs, prepared once for all steps, not once per step
            c, x_n = _gru_inputs(xw, b_hh)
            steps = list(zip(c.unbind(0), x_n.unbind(0)))
        else:
            steps = xw.unbind(0)
        w_hh_t = w_hh.T
        outputs: list[Tensor | None] = [None] * len(steps)
        order = range(len(steps) - 1, -1, -1) if reverse else range(len(steps))
        for t in order:
            new = step(steps[t], state, w_hh_t, b_hh)
            if mask is None:
                state = new
                outputs[t] = new[0]
            else:  # past a sequence's end: keep the state, output zeros
                m = mask[t]
                state = tuple(ops.where(m, n, s) for n, s in zip(new, state))
                outputs[t] = ops.where(m, new[0], 0.0)
        return ops.stack(outputs, axis=0), state

    def forward(self, input: Tensor, hx: Any = None, lengths: Any = None) -> tuple[Tensor, Any]:  # noqa: A002
        """Run the layer over a sequence.

        Args:
            input: (T, B, input_size), or (B, T, input_size) with ``batch_first``, or (T, input_size) unbatched.
            hx: initial state(s), (num_layers·num_directions, B, hidden_size) ((…, hidden_size) unbatched);
                for the LSTM a tuple ``(h0, c0)``. Zeros when None.
            lengths: optional (B,) integers in 1..T, in any order: each sequence's true length. Outputs past a
                sequence's end are zero, the final state is taken at its last real step, and the reverse
                direction starts at its own end (PyTorch's packed-sequence results).

        Returns:
            ``output, h_n`` (LSTM: ``output, (h_n, c_n)``): output (T, B, num_directions·hidden_size)
            (batch-first or unbatched like the input), h_n (num_layers·num_directions, B, hidden_size) in
            PyTorch's order (layer-major, forward before reverse).

        Raises:
            OpError: wrong input rank or feature size, a state of the wrong shape, or bad lengths; the
                message names the layer, the expected and the received shape.
        """
        is_lstm = self.mode == "LSTM"
        batched = self._check_input(input, lengths)
        x = input if batched else input.unsqueeze(1)
        if batched and self.batch_first:
            x = x.transpose(0, 1)
        steps, batch = x.shape[0], x.shape[1]
        if is_lstm:
            if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
                raise OpError(f"{type(self).__name__}: expected hx = (h0, c0), a pair of "
                              f"(num_layers*num_directions, batch, hidden_size) states, got {type(hx).__name__}")
            h0, c0 = (None, None) if hx is None else hx
            states = list(zip(self._initial_states(h0, batch, batched, x, "h0"),
                              self._initial_states(c0, batch, batched, x, "c0")))
        else:
            if isinstance(hx, (tuple, list)) and hx and isinstance(hx[0], Tensor):
                raise OpError(f"{type(self).__name__}: expected hx to be one tensor of shape "
                              f"(num_layers*num_directions, batch, hidden_size), got a {type(hx).__name__}")
            states = [(h,) for h in self._initial_states(hx, batch, batched, x, "hx")]
        mask = self._mask(lengths, steps, batch, x)
        if mask is not None:  # padding never reaches the arithmetic, so even NaN padding is harmless
            x = ops.where(mask, x, 0.0)
        finals: list[State] = []
        layer_input = x
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self.num_directions):
                k = layer * self.num_directions + direction
                out, final = self._run_direction(layer_input, self._suffixes[k], states[k], direction == 1, mask)
                outputs.append(out)
                finals.append(final)
            layer_input = outputs[0] if len(outputs) == 1 else ops.concat(outputs, axis=2)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, True)
        output = layer_input
        h_n = ops.stack([f[0] for f in finals], axis=0)
        c_n = ops.stack([f[1] for f in finals], axis=0) if is_lstm else None
        if not batched:
            output, h_n = output.squeeze(1), h_n.squeeze(1)
            c_n = c_n.squeeze(1) if is_lstm else None
        elif self.batch_first:
            output = output.transpose(0, 1)
        return (output, (h_n, c_n)) if is_lstm else (output, h_n)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        for flag in ("batch_first", "bidirectional"):
            if getattr(self, flag):
                s += f", {flag}=True"
        if not self.bias:
            s += ", bias=False"
        if self.dropout:
            s += f", dropout={self.dropout}"
        return s


class RNN(_RecurrentLayer):
    """Elman RNN over a sequence, as ``torch.nn.RNN`` (``nonlinearity='tanh'`` or ``'relu'``).

    Args: as :class:`LSTM`, plus ``nonlinearity``. Call: ``output, h_n = rnn(x, hx=None, lengths=None)``.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 dtype: Any = DEFAULT_FLOAT, device: str | None = None):
        object.__setattr__(self, "mode", _rnn_mode(nonlinearity))
        object.__setattr__(self, "nonlinearity", nonlinearity)
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         dtype, device)


class LSTM(_RecurrentLayer):
    """Long short-term memory over a sequence, as ``torch.nn.LSTM`` (gate order i, f, g, o).

    Args:
        input_size: I, features per time step.
        hidden_size: H, units of the hidden and cell state.
        num_layers: stacked layers (each takes the previous one's output).
        bias: use ``bias_ih``/``bias_hh``.
        batch_first: input and output are (B, T, ·) instead of (T, B, ·).
        dropout: dropout probability on the outputs of every layer but the last (training mode only).
        bidirectional: also run each layer backwards in time; outputs are concatenated (2·H features).
        dtype, device: of the parameters.

    Call: ``output, (h_n, c_n) = lstm(x, (h0, c0)=None, lengths=None)`` (see ``forward``).
    """

    mode = "LSTM"


class GRU(_RecurrentLayer):
    """Gated recurrent unit over a sequence, as ``torch.nn.GRU`` (gate order r, z, n; PyTorch's form).

    Args: as :class:`LSTM`. Call: ``output, h_n = gru(x, hx=None, lengths=None)``.
    """

    mode = "GRU"


def pad_sequences(sequences: Sequence[Any], batch_first: bool = False, padding_value: float = 0.0,
                  dtype: Any = None, device: str | None = None) -> tuple[Tensor, np.ndarray]:
    """Pad variable-length sequences into one batch, and return their lengths.

    Args:
        sequences: B arrays or Tensors of shape (L_b, *features), in any order of length.
        batch_first: return (B, T, *features) instead of (T, B, *features), T = max L_b.
        padding_value: the value written past each sequence's end.
        dtype, device: of the result (default: the sequences' promoted dtype, and their device).

    Returns:
        ``(padded, lengths)``: a Tensor and an int64 NumPy array (B,) ready for the ``lengths`` argument of
        :class:`RNN`/:class:`LSTM`/:class:`GRU`. Padding is ``concat`` + ``stack`` on the tape, so gradients
        flow back into Tensor sequences (e.g. embeddings). (``torch.nn.utils.rnn.pad_sequence`` returns only
        the first.)

    Raises:
        ValueError: an empty list, an empty sequence, or sequences whose feature shapes differ.
    """
    if not sequences:
        raise ValueError("pad_sequences: needs at least one sequence")
    tensors = []
    for i, s in enumerate(sequences):
        t = s if isinstance(s, Tensor) else Tensor(s)
        if device is not None:
            t = t.to(device)
        if dtype is not None:
            t = t.astype(dtype)
        if t.ndim == 0 or t.shape[0] == 0:
            raise ValueError(f"pad_sequences: sequence {i} is empty or 0-d (shape {t.shape})")
        if tensors and t.shape[1:] != tensors[0].shape[1:]:
            raise ValueError(f"pad_sequences: sequence {i} has features {t.shape[1:]}, "
                             f"expected {tensors[0].shape[1:]}")
        tensors.append(t)
    lengths = np.array([t.shape[0] for t in tensors], dtype=np.int64)
    steps = int(lengths.max())
    rows = []
    for t in tensors:
        if t.shape[0] < steps:
            xp = get_array_module(t.array)
            pad = Tensor._wrap(xp.full((steps - t.shape[0], *t.shape[1:]), padding_value, dtype=t.dtype))
            t = ops.concat([t, pad], axis=0)
        rows.append(t)
    return ops.stack(rows, axis=0 if batch_first else 1), lengths
