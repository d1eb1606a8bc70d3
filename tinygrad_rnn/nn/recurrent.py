"""Recurrent layers and one-step cell modules, written once for any cell of :mod:`tinygrad_rnn.nn.cells`.

Nothing here has a backward of its own: each time step is the cell's handful of ``addmm`` (``c + a @ b``),
``+``, ``*``, ``sigmoid``, ``tanh`` and ``split`` nodes on the tape, so backpropagation through time is
``loss.backward()``.

* :class:`RNNBase` runs a :class:`~tinygrad_rnn.nn.cells.RecurrentCell` over whole sequences: stacked
  layers, bidirectional, ``lengths`` or a :class:`~tinygrad_rnn.nn.utils.rnn.PackedSequence`,
  ``batch_first``, unbatched input, initial states, dropout between layers. :class:`RNN`, :class:`LSTM`,
  :class:`GRU` and :class:`PeepholeLSTM` are RNNBase with a cell.
* :class:`RNNCellBase` runs one step of a cell: :class:`RNNCell`, :class:`LSTMCell`, :class:`GRUCell`,
  :class:`PeepholeLSTMCell`.

Interface and parameter layout follow PyTorch exactly (``torch.nn.RNN/LSTM/GRU`` and their cells), so a
PyTorch state dict loads and gives the same numbers. Per layer ``k`` and direction (suffix ``_reverse`` for
the backward direction of a bidirectional layer), each parameter of the cell is named ``{name}_l{k}``:

=====================  =======================  ================================================
name                   shape                    meaning
=====================  =======================  ================================================
``weight_ih_l{k}``     (gates·H, input of k)    input-to-hidden weights, gates stacked row-wise
``weight_hh_l{k}``     (gates·H, H)             hidden-to-hidden weights
``bias_ih_l{k}``       (gates·H,)               input bias
``bias_hh_l{k}``       (gates·H,)               hidden bias
=====================  =======================  ================================================

with gates = 1 (RNN), 4 in the order ``i, f, g, o`` (LSTM), 3 in the order ``r, z, n`` (GRU); a cell may add
parameters of its own (the peephole LSTM's ``weight_ci_l{k}``...). The cells' equations are in
:mod:`tinygrad_rnn.nn.cells`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from tinygrad_rnn import functional as F
from tinygrad_rnn import ops
from tinygrad_rnn.backend import to_device, to_numpy
from tinygrad_rnn.nn import cells
from tinygrad_rnn.nn.cells import RecurrentCell, State
from tinygrad_rnn.nn.layers import uniform_parameter
from tinygrad_rnn.nn.module import Module
from tinygrad_rnn.nn.utils.rnn import PackedSequence
from tinygrad_rnn.tensor import OpError, Tensor, as_tensor, full, zeros

__all__ = ["RNNCellBase", "RNNCell", "LSTMCell", "GRUCell", "PeepholeLSTMCell",
           "RNNBase", "RNN", "LSTM", "GRU", "PeepholeLSTM", "pad_sequences"]


def _create_parameters(module: Module, cell: RecurrentCell, input_size: int, hidden_size: int, bias: bool,
                       suffix: str, dtype: Any, device: str | None) -> tuple[str, ...]:
    """Register the cell's parameters on ``module`` as ``{name}{suffix}``, drawn from U(-1/√H, 1/√H)."""
    bound = 1 / math.sqrt(hidden_size)
    shapes = cell.parameter_shapes(input_size, hidden_size, bias)
    for name, shape in shapes.items():
        setattr(module, name + suffix, uniform_parameter(shape, bound, dtype, device))
    return tuple(shapes)


def _the_cell(module: Module, cell: RecurrentCell | None, first: Any) -> RecurrentCell:
    """``cell``, else the class's ``cell`` attribute; a clear error when there is neither (or a mode string)."""
    name = type(module).__name__
    if isinstance(first, str):
        raise TypeError(f"{name}: takes a cell object (cell=nn.cells.LSTM(), or a subclass's `cell` attribute), "
                        f"not PyTorch's mode string {first!r}")
    chosen = cell if cell is not None else getattr(type(module), "cell", None)
    if not isinstance(chosen, RecurrentCell):
        raise TypeError(f"{name}: needs a RecurrentCell, as cell= or as the class attribute `cell`, got {chosen!r}")
    return chosen


def _check_sizes(name: str, **sizes: int) -> None:
    if any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in sizes.values()):
        raise ValueError(f"{name}: {', '.join(sizes)} must be positive integers, got "
                         + ", ".join(repr(v) for v in sizes.values()))


# --------------------------------------------------------------------------------------------------
# One step, for a user-written time loop
# --------------------------------------------------------------------------------------------------


class RNNCellBase(Module):
    """One time step of a :class:`~tinygrad_rnn.nn.cells.RecurrentCell`, with its parameters named as the
    cell names them (PyTorch's ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh`` for the standard cells).

    Use a subclass that sets ``cell`` (``class MyCell(nn.RNNCellBase): cell = MyRule()``) or pass ``cell=``.

    Call: ``h' = module(x, h=None)``, or ``(h', c') = module(x, (h, c)=None)`` for a two-tensor state;
    x (B, input_size) or (input_size,), each state (B, hidden_size) or (hidden_size,), zeros when None.

    Raises:
        TypeError: no cell (neither ``cell=`` nor a class attribute).
        ValueError: a size that is not a positive integer.
        OpError: wrong input rank or feature size, or a state of the wrong shape (expected and received
            shapes named).
    """

    cell: RecurrentCell

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, dtype: Any = None,
                 device: str | None = None, *, cell: RecurrentCell | None = None):
        super().__init__()
        self.cell = _the_cell(self, cell, input_size)
        _check_sizes(type(self).__name__, input_size=input_size, hidden_size=hidden_size)
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        self._names = _create_parameters(self, self.cell, input_size, hidden_size, bias, "", dtype, device)
        for name in self.cell.parameter_shapes(input_size, hidden_size, True):
            if name not in self._names:  # bias=False: the attribute exists and is None, as in PyTorch
                setattr(self, name, None)

    def forward(self, input: Tensor, hx: Any = None) -> Any:  # noqa: A002 - PyTorch's name
        name, state_names = type(self).__name__, self.cell.state_names
        if input.ndim not in (1, 2) or input.shape[-1] != self.input_size:
            raise OpError(f"{name}: expected input of shape (batch, {self.input_size}) or ({self.input_size},), "
                          f"got {tuple(input.shape)}")
        dtype = getattr(self, self._names[0]).dtype
        if input.dtype != dtype:  # as PyTorch: no silent promotion to the input's dtype
            raise OpError(f"{name}: expected input of dtype {dtype} (the cell's parameters), got {input.dtype}")
        batched = input.ndim == 2
        expected = (input.shape[0], self.hidden_size) if batched else (self.hidden_size,)
        given = (hx,) if len(state_names) == 1 else (hx if hx is not None else (None,) * len(state_names))
        if len(given) != len(state_names):
            raise OpError(f"{name}: expected hx = ({', '.join(state_names)}), got {len(given)} tensors")
        state = []
        for s, what in zip(given, state_names, strict=True):
            if s is None:
                s = zeros(expected, dtype=self.weight_hh.dtype, device=input.device)
            elif tuple(s.shape) != expected:
                raise OpError(f"{name}: expected {what} of shape {expected}, got {tuple(s.shape)}")
            elif s.dtype != dtype:
                raise OpError(f"{name}: expected {what} of dtype {dtype} (the cell's parameters), got {s.dtype}")
            state.append(s if batched else s.unsqueeze(0))
        x = input if batched else input.unsqueeze(0)
        inputs, p = self.cell.prepare(x.unsqueeze(0), {n: getattr(self, n) for n in self._names})
        new = self.cell.step(inputs[0], tuple(state), p)
        new = new if batched else tuple(s.squeeze(0) for s in new)
        return new[0] if len(new) == 1 else new

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")


class RNNCell(RNNCellBase):
    """One Elman RNN step: ``h' = act(W_ih x + b_ih + W_hh h + b_hh)``, act = tanh (default) or relu.

    Call: ``h' = cell(x, h=None)``; x (B, input_size) or (input_size,), h (B, hidden_size) or (hidden_size,),
    zeros when None. Parameters as ``torch.nn.RNNCell``.

    Raises:
        ValueError: ``nonlinearity`` is neither ``'tanh'`` nor ``'relu'``.
        OpError: wrong input rank or feature size, or h of the wrong shape (expected and received shapes named).
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 dtype: Any = None, device: str | None = None):
        super().__init__(input_size, hidden_size, bias, dtype, device, cell=cells.Elman(nonlinearity))
        self.nonlinearity = nonlinearity


class LSTMCell(RNNCellBase):
    """One LSTM step (gates i, f, g, o as ``torch.nn.LSTMCell``): ``c' = f⊙c + i⊙g``, ``h' = o⊙tanh(c')``.

    Call: ``h', c' = cell(x, (h, c)=None)``; shapes as :class:`RNNCell`, zeros when the state is None.
    """

    cell = cells.LSTM()


class GRUCell(RNNCellBase):
    """One GRU step in PyTorch's form (gates r, z, n): ``h' = (1 - z)⊙n + z⊙h``,
    ``n = tanh(W_in x + b_in + r⊙(W_hn h + b_hn))``.

    Call: ``h' = cell(x, h=None)``; shapes as :class:`RNNCell`.
    """

    cell = cells.GRU()


class PeepholeLSTMCell(RNNCellBase):
    """One step of the peephole LSTM (Gers, Schraudolph & Schmidhuber 2002; :class:`cells.PeepholeLSTM`).

    Parameters as :class:`LSTMCell` plus ``weight_ci``, ``weight_cf``, ``weight_co`` (hidden_size,).
    Call: ``h', c' = cell(x, (h, c)=None)``.
    """

    cell = cells.PeepholeLSTM()


# --------------------------------------------------------------------------------------------------
# Layers: whole sequences, stacked and bidirectional, with variable lengths
# --------------------------------------------------------------------------------------------------


def _unpack(packed: PackedSequence) -> tuple[Tensor, np.ndarray, np.ndarray | None]:
    """A PackedSequence as a padded (T, B, *) Tensor in the original batch order, its lengths, and the
    (T, B) index of each real step's row in ``packed.data`` (to pack the output the same way)."""
    batch_sizes = to_numpy(getattr(packed.batch_sizes, "array", packed.batch_sizes)).astype(np.int64)
    data = packed.data
    batch = int(batch_sizes[0])
    rows = np.full((len(batch_sizes), batch), data.shape[0], dtype=np.int64)  # data.shape[0]: a zero row
    offsets = np.concatenate([[0], np.cumsum(batch_sizes)[:-1]])
    for t, (offset, size) in enumerate(zip(offsets, batch_sizes, strict=True)):
        rows[t, :size] = np.arange(offset, offset + size)
    unsorted = packed.unsorted_indices
    if unsorted is not None:
        rows = rows[:, to_numpy(getattr(unsorted, "array", unsorted)).astype(np.int64)]
    lengths = (rows < data.shape[0]).sum(axis=0)
    padded = ops.concat([data, zeros((1, *data.shape[1:]), dtype=data.dtype, device=data.device)], axis=0)
    return padded[to_device(rows, data.device)], lengths, rows


class RNNBase(Module):
    """Runs a :class:`~tinygrad_rnn.nn.cells.RecurrentCell` over sequences, as PyTorch's recurrent layers do.

    Use a subclass that sets the cell (``class IndRNN(nn.RNNBase): cell = IndRNNCell()``), or pass ``cell=``.
    Parameters are the cell's, named ``{name}_l{k}`` and ``{name}_l{k}_reverse`` (PyTorch's names).

    Args:
        input_size: I, features per time step.
        hidden_size: H, units of the hidden (and cell) state.
        num_layers: stacked layers (each takes the previous one's output).
        bias: give the cell its biases.
        batch_first: input and output are (B, T, ·) instead of (T, B, ·).
        dropout: dropout probability on the outputs of every layer but the last (training mode only).
        bidirectional: also run each layer backwards in time; outputs are concatenated (2·H features).
        dtype, device: of the parameters.
        cell: the cell, when the class does not set one.

    Raises:
        TypeError: no cell (neither ``cell=`` nor a class attribute), or PyTorch's mode string in its place.
        ValueError: a size that is not a positive integer, or a dropout probability outside [0, 1].
    """

    cell: RecurrentCell

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 dtype: Any = None, device: str | None = None, *, cell: RecurrentCell | None = None):
        super().__init__()
        name = type(self).__name__
        self.cell = _the_cell(self, cell, input_size)
        _check_sizes(name, input_size=input_size, hidden_size=hidden_size, num_layers=num_layers)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.bidirectional = bias, batch_first, bidirectional
        self.dropout = F.check_dropout_probability(dropout, name)
        self._suffixes: list[str] = []
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * self.num_directions
            for direction in range(self.num_directions):
                self._suffixes.append(f"_l{layer}" + ("_reverse" if direction else ""))
                self._names = _create_parameters(self, self.cell, layer_input, hidden_size, bias,
                                                 self._suffixes[-1], dtype, device)

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def flatten_parameters(self) -> None:
        """Does nothing: PyTorch's call packs the weights into one cuDNN buffer; here every parameter is
        already its own array and no step needs them contiguous. Kept so that PyTorch code runs unchanged."""

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
        dtype = getattr(self, self._names[0] + self._suffixes[0]).dtype
        if x.dtype != dtype:  # as PyTorch: no silent promotion to the input's dtype
            raise OpError(f"{name}: expected input of dtype {dtype} (the layer's parameters), got {x.dtype}; "
                          "convert the input (.to(dtype)) or the layer (.to(dtype), .double())")
        if x.ndim == 2 and lengths is not None:
            raise OpError(f"{name}: lengths needs a batched input {layout}, got unbatched shape {tuple(x.shape)}")
        if x.shape[0 if x.ndim == 2 or not self.batch_first else 1] == 0:
            raise OpError(f"{name}: the sequence is empty (T = 0), got shape {tuple(x.shape)}")
        return x.ndim == 3

    def _initial_states(self, hx: Any, batch: int, batched: bool, like: Tensor) -> list[State]:
        """One state tuple per layer and direction, from ``hx`` (a tensor, or a tuple for a multi-tensor
        state) or zeros."""
        name, state_names = type(self).__name__, self.cell.state_names
        count = self.num_layers * self.num_directions
        expected = (count, batch, self.hidden_size) if batched else (count, self.hidden_size)
        if len(state_names) == 1:
            if isinstance(hx, (tuple, list)) and hx and isinstance(hx[0], Tensor):
                raise OpError(f"{name}: expected hx to be one tensor of shape "
                              f"(num_layers*num_directions, batch, hidden_size), got a {type(hx).__name__}")
            given: tuple[Any, ...] = (hx,)
        elif hx is None:
            given = (None,) * len(state_names)
        elif not isinstance(hx, (tuple, list)) or len(hx) != len(state_names):
            pair = ", ".join(f"{s}0" for s in state_names)
            raise OpError(f"{name}: expected hx = ({pair}), a tuple of {len(state_names)} "
                          f"(num_layers*num_directions, batch, hidden_size) states, got {type(hx).__name__}")
        else:
            given = tuple(hx)
        per_state = []
        for s, what in zip(given, state_names, strict=True):
            what = "hx" if len(state_names) == 1 else f"{what}0"
            if s is None:
                per_state.append([zeros((batch, self.hidden_size), dtype=like.dtype, device=like.device)] * count)
                continue
            if not isinstance(s, Tensor):  # a NumPy/CuPy array or nested list: a constant initial state
                s = Tensor(s, dtype=like.dtype, device=like.device)
            if tuple(s.shape) != expected:
                raise OpError(f"{name}: expected {what} of shape {expected} (num_layers*num_directions, "
                              f"{'batch, ' if batched else ''}hidden_size), got {tuple(s.shape)}")
            if s.dtype != like.dtype:
                raise OpError(f"{name}: expected {what} of dtype {like.dtype} (the input's and the layer's), "
                              f"got {s.dtype}")
            per_state.append(list((s if batched else s.unsqueeze(1)).unbind(0)))
        return list(zip(*per_state, strict=True))

    def _mask(self, lengths: Any, steps: int, batch: int, like: Tensor) -> Any:
        """(T, B, 1) boolean mask of real steps (:class:`~tinygrad_rnn.ops.LengthMask`), or None without lengths."""
        if lengths is None:
            return None
        name = type(self).__name__
        values = np.asarray(to_numpy(lengths.array if isinstance(lengths, Tensor) else lengths))
        if values.ndim != 1 or values.shape[0] != batch:
            raise OpError(f"{name}: expected lengths of shape ({batch},) (one per sequence), got {values.shape}")
        if values.dtype.kind not in "iuf" or (values.dtype.kind == "f" and not np.all(np.mod(values, 1) == 0)):
            raise OpError(f"{name}: lengths must be integers, got {values.tolist()} (dtype {values.dtype})")
        values = values.astype(np.int64, copy=False)
        if values.min() < 1 or values.max() > steps:
            raise OpError(f"{name}: every length must lie in 1..T = 1..{steps}, got {values.tolist()}")
        # an op (not NumPy code here), so that a captured step recomputes the mask from new lengths
        return ops.LengthMask.apply(as_tensor(values), steps=steps, device=like.device).array

    # ---------------------------------------------------------------- the time loop
    def _run_direction(self, x: Tensor, suffix: str, state: State, reverse: bool, mask: Any) -> tuple[Tensor, State]:
        """Run one direction of one layer over x (T, B, in); returns outputs (T, B, H) and the final state."""
        inputs, p = self.cell.prepare(x, {name: getattr(self, name + suffix) for name in self._names})
        outputs: list[Any] = [None] * len(inputs)
        for t in (range(len(inputs) - 1, -1, -1) if reverse else range(len(inputs))):
            new = self.cell.step(inputs[t], state, p)
            if mask is None:
                state = new
                outputs[t] = new[0]
            else:  # past a sequence's end: keep the state, output zeros
                state = tuple(ops.where(mask[t], n, s) for n, s in zip(new, state, strict=True))
                outputs[t] = ops.where(mask[t], new[0], 0.0)
        return ops.stack(outputs, axis=0), state

    def forward(self, input: Any, hx: Any = None, lengths: Any = None) -> tuple[Any, Any]:  # noqa: A002
        """Run the layer over a sequence.

        Args:
            input: (T, B, input_size), or (B, T, input_size) with ``batch_first``, or (T, input_size)
                unbatched; or a :class:`~tinygrad_rnn.nn.utils.rnn.PackedSequence` (then the output is one
                too, and ``batch_first`` does not apply, as in PyTorch).
            hx: initial state(s), (num_layers·num_directions, B, hidden_size) ((…, hidden_size) unbatched);
                for a two-tensor state (LSTM) a tuple ``(h0, c0)``. Zeros when None.
            lengths: optional (B,) integers in 1..T, in any order: each sequence's true length. Outputs past a
                sequence's end are zero, the final state is taken at its last real step, and the reverse
                direction starts at its own end (PyTorch's packed-sequence results).

        Returns:
            ``output, h_n`` (two-tensor state: ``output, (h_n, c_n)``): output (T, B, num_directions·hidden_size)
            (batch-first or unbatched like the input), h_n (num_layers·num_directions, B, hidden_size) in
            PyTorch's order (layer-major, forward before reverse), batch in the input's order.

        Raises:
            OpError: wrong input rank or feature size, a state of the wrong shape, or bad lengths; the
                message names the layer, the expected and the received shape.
        """
        packed = input if isinstance(input, PackedSequence) else None
        rows: Any = None
        if packed is not None:
            if lengths is not None:
                raise OpError(f"{type(self).__name__}: a PackedSequence carries its lengths; got lengths= too")
            input, lengths, rows = _unpack(packed)
        batched = self._check_input(input, lengths)
        x = input if batched else input.unsqueeze(1)
        if batched and self.batch_first and packed is None:
            x = x.transpose(0, 1)
        steps, batch = x.shape[0], x.shape[1]
        states = self._initial_states(hx, batch, batched, x)
        mask = self._mask(lengths, steps, batch, x)
        if mask is not None:  # padding never reaches the arithmetic, so even NaN padding is harmless
            x = ops.where(mask, x, 0.0)
        finals: list[State] = []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self.num_directions):
                k = layer * self.num_directions + direction
                out, final = self._run_direction(x, self._suffixes[k], states[k], direction == 1, mask)
                outputs.append(out)
                finals.append(final)
            x = outputs[0] if len(outputs) == 1 else ops.concat(outputs, axis=2)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True)
        h_n = tuple(ops.stack(list(s), axis=0) for s in zip(*finals, strict=True))
        if not batched:
            x, h_n = x.squeeze(1), tuple(s.squeeze(1) for s in h_n)
        elif packed is not None:
            real = rows < packed.data.shape[0]
            order = np.argsort(rows[real], kind="stable")  # each real step at its row of packed.data
            t_index, b_index = (to_device(i[order], x.device) for i in np.nonzero(real))
            x = PackedSequence(x[t_index, b_index], packed.batch_sizes, packed.sorted_indices,
                               packed.unsorted_indices)
        elif self.batch_first:
            x = x.transpose(0, 1)
        return x, (h_n[0] if len(h_n) == 1 else h_n)

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


class RNN(RNNBase):
    """Elman RNN over a sequence, as ``torch.nn.RNN`` (``nonlinearity='tanh'`` or ``'relu'``).

    Args: as :class:`RNNBase`, plus ``nonlinearity``. Call: ``output, h_n = rnn(x, hx=None, lengths=None)``.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 dtype: Any = None, device: str | None = None):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         dtype, device, cell=cells.Elman(nonlinearity))
        self.nonlinearity = nonlinearity


class LSTM(RNNBase):
    """Long short-term memory over a sequence, as ``torch.nn.LSTM`` (gate order i, f, g, o).

    Args: as :class:`RNNBase`. Call: ``output, (h_n, c_n) = lstm(x, (h0, c0)=None, lengths=None)``.
    ``proj_size`` (PyTorch's projected LSTM) is accepted only as 0, its default.
    """

    cell = cells.LSTM()

    def __init__(self, *args: Any, proj_size: int = 0, **kwargs: Any):
        if proj_size:
            raise NotImplementedError(f"LSTM: proj_size={proj_size} is not supported here (projected LSTMs); "
                                      "only proj_size=0")
        super().__init__(*args, **kwargs)


class GRU(RNNBase):
    """Gated recurrent unit over a sequence, as ``torch.nn.GRU`` (gate order r, z, n; PyTorch's form).

    Args: as :class:`RNNBase`. Call: ``output, h_n = gru(x, hx=None, lengths=None)``.
    """

    cell = cells.GRU()


class PeepholeLSTM(RNNBase):
    """The peephole LSTM of Gers, Schraudolph & Schmidhuber (2002) over a sequence (PyTorch has none).

    Parameters as :class:`LSTM` plus ``weight_ci_l{k}``, ``weight_cf_l{k}``, ``weight_co_l{k}`` (H,) per
    layer and direction: the diagonal peephole weights (equations in :class:`cells.PeepholeLSTM`).
    Args: as :class:`RNNBase`. Call: ``output, (h_n, c_n) = lstm(x, (h0, c0)=None, lengths=None)``.
    """

    cell = cells.PeepholeLSTM()


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
    tensors: list[Tensor] = []
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
            pad = full((steps - t.shape[0], *t.shape[1:]), padding_value, dtype=t.dtype, device=t.device)
            t = ops.concat([t, pad], axis=0)
        rows.append(t)
    return ops.stack(rows, axis=0 if batch_first else 1), lengths
