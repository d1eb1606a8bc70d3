"""The source article's recurrent networks, in its own notation, with hand-derived BPTT.

The article is "Comprensión matemática de RNN y sus variantes", written by sanpreetai and
machine-translated into Spanish by Barcelona Geeks (CC BY-SA), kept in
``shared/seed/000_2124ac72c4cb72fa.txt``. Its sections are cited below as:

* article §1   "Ecuación matemática de RNN" (the vanilla RNN),
* article §2   "Parámetros y Gradientes", §2.1 gradient w.r.t. V, §2.2 gradient w.r.t. W,
* article §LSTM "Variantes RNN (LSTM y GRU)": escritura / lectura / olvido selectivos,
* article §GRU  the closing "Nota" on the GRU.

This module is the *oracle* the tape is checked against, so it does not use the tape: it is plain
array code (NumPy or CuPy, whichever owns the inputs, via :func:`backend.get_array_module`), and
every gradient below is derived by hand from the forward formulas. It imports only ``backend`` and
``numerics`` (the sigmoid and the finite differences it shares with the tape's ops and with ``gradcheck``;
``numerics`` itself imports only ``backend``).

Conventions (all functions):

* Batched and time-major: an input sequence is ``(T, B, n)``, a state sequence ``(T, B, d)``.
  Each row is one sample, so the article's column-vector form ``S_t = U I_t + W S_{t-1} + b``
  is written ``S_t = I_t Uᵀ + S_{t-1} Wᵀ + b`` here; the two are the same numbers per sample.
* Parameters are dicts of arrays named as in the article (``U``, ``W``, ``b``, ``V``, ``c``,
  and ``U_i``, ``W_f``, ... for the gates).
* A ``*_bptt`` function takes the gradient of the loss with respect to every output step
  (``dO`` or ``dh``, shaped like the output) and returns a dict with one gradient per parameter
  plus the gradient(s) at the initial state(s) (``S0``; ``h0`` and ``s0``), also when the initial
  state was not given (then it is the gradient at the zero state).
* :func:`to_state_dict` / :func:`from_state_dict` map a parameter dict onto the keys, layout and
  gate order of PyTorch's ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` (and ``tinygrad_rnn.nn``).
* Each cell is one :class:`ArticleCell` object in :data:`CELLS` (its parameter names and shapes, its
  states, its options, its PyTorch gate layout, and its forward/BPTT functions); the generic functions
  (:func:`forward`, :func:`bptt`, :func:`truncated_bptt`, :func:`init_params`, the state-dict mappings, the
  finite-difference check) look the cell up there instead of branching on its name.

Where the article is wrong or silent, the standard form is used and the difference is named in the
function's docstring (and in the README's errata table).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from tinygrad_rnn.backend import get_array_module, is_torch_tensor, to_numpy
from tinygrad_rnn.numerics import central_differences, sigmoid

__all__ = [
    "ArticleCell",
    "CELLS",
    "PARAM_KEYS",
    "STATE_KEYS",
    "init_params",
    "rnn_forward",
    "rnn_bptt",
    "lstm_forward",
    "lstm_bptt",
    "gru_forward",
    "gru_bptt",
    "forward",
    "bptt",
    "truncated_bptt",
    "sgd_update",
    "to_state_dict",
    "from_state_dict",
    "GradCheckResult",
    "compare_gradients",
    "finite_difference_gradients",
    "check_bptt_finite_differences",
]

Array = Any  # a numpy.ndarray or a cupy.ndarray
Params = dict[str, Array]
Arrays = Mapping[str, Array]  # parameters or states by name

# --------------------------------------------------------------------------------------------
# small helpers


def _cell(cell: str) -> ArticleCell:
    if cell not in CELLS:
        raise ValueError(f"article: unknown cell {cell!r}; expected one of {', '.join(map(repr, CELLS))}")
    return CELLS[cell]


def _sizes(p: Mapping[str, Array], cell: str, where: str) -> tuple[int, int, int]:
    """Check ``p`` holds exactly the keys of ``cell`` with consistent shapes; return (n, d, k).

    Raises:
        KeyError: a parameter is missing.
        ValueError: a parameter has the wrong shape (the message names it and the expected shape).
    """
    spec = _cell(cell)
    missing = [key for key in spec.param_keys if key not in p]
    if missing:
        raise KeyError(f"article.{where}: missing parameter(s) {missing}; a {cell} needs {list(spec.param_keys)}")
    u_key = "U" + spec.torch_gates[0]
    if len(p[u_key].shape) != 2:
        raise ValueError(f"article.{where}: parameter {u_key!r} must be 2-D (d×n), got shape {tuple(p[u_key].shape)}")
    n, d, k = spec.sizes(p)
    for key, shape in spec.shapes(n, d, k).items():
        if tuple(p[key].shape) != shape:
            raise ValueError(
                f"article.{where}: parameter {key!r} has shape {tuple(p[key].shape)}, expected {shape} "
                f"(input size n={n}, hidden size d={d}" + (f", output size k={k})" if k else ")")
            )
    return n, d, k


def _check_input(x: Array, n: int, where: str, name: str = "input") -> tuple[int, int]:
    """Check ``x`` is (T, B, n) with T, B ≥ 1; return (T, B)."""
    if x.ndim != 3:
        raise ValueError(f"article.{where}: {name} must be 3-D (T, B, n), time-major; got shape {tuple(x.shape)}")
    T, B, size = x.shape
    if size != n:
        raise ValueError(f"article.{where}: {name} has feature size {size}, the parameters expect n={n}")
    if T < 1 or B < 1:
        raise ValueError(f"article.{where}: {name} needs at least one time step and one sample, got shape {x.shape}")
    return T, B


def _check_grad(g: Array, shape: tuple[int, ...], where: str, name: str) -> None:
    if tuple(g.shape) != shape:
        raise ValueError(f"article.{where}: {name} has shape {tuple(g.shape)}, expected {shape} (like the output)")


def _initial_state(xp: Any, state: Array | None, B: int, d: int, dtype: Any, where: str, name: str) -> Array:
    """The given initial state, checked to be (B, d), or zeros."""
    if state is None:
        return xp.zeros((B, d), dtype=dtype)
    if tuple(state.shape) != (B, d):
        raise ValueError(f"article.{where}: {name} has shape {tuple(state.shape)}, expected (B, d) = {(B, d)}")
    return state


def _dtype(xp: Any, x: Array, p: Mapping[str, Array]) -> Any:
    return xp.result_type(x, *p.values())


def _sum_outer(xp: Any, g: Array, a: Array) -> Array:
    """Σ_t Σ_samples g_t a_tᵀ for g (T, B, p) and a (T, B, q): the (p, q) weight gradient."""
    return xp.tensordot(g, a, axes=([0, 1], [0, 1]))


def _previous(xp: Any, first: Array, seq: Array) -> Array:
    """The sequence shifted one step later: (first, seq_0, ..., seq_{T-2})."""
    return xp.concatenate([first[None], seq[:-1]], axis=0)


# --------------------------------------------------------------------------------------------
# vanilla RNN (article §1, §2)


def _check_activation(activation: str | None, where: str) -> None:
    if activation not in (None, "tanh"):
        raise ValueError(
            f"article.{where}: activation must be None (the article's linear RNN) or 'tanh', got {activation!r}"
        )


def rnn_forward(
    p: Mapping[str, Array], I: Array, S0: Array | None = None, activation: str | None = None
) -> tuple[Array, Array]:
    """The article's vanilla RNN (article §1), batched and time-major.

    Per sample, in the article's column-vector notation::

        S_t = f(U I_t + W S_{t-1} + b)      U: d×n, W: d×d, b: d
        O_t = V S_t + c                     V: k×d, c: k
        S_0 = 0 unless given

    The article uses no squashing function (``f`` is the identity, ``activation=None``);
    ``activation='tanh'`` gives Elman's RNN as PyTorch's ``nn.RNN`` computes it.

    Args:
        p: ``dict(U=(d, n), W=(d, d), b=(d,), V=(k, d), c=(k,))``.
        I: inputs, (T, B, n).
        S0: initial state (B, d), or ``None`` for zeros.
        activation: ``None`` (linear, the article's form) or ``'tanh'``.

    Returns:
        ``(S, O)``: states (T, B, d) and outputs (T, B, k).

    Raises:
        KeyError, ValueError: missing parameters, or shapes that do not fit together.
    """
    _check_activation(activation, "rnn_forward")
    n, d, _ = _sizes(p, "rnn", "rnn_forward")
    T, B = _check_input(I, n, "rnn_forward", "I")
    xp = get_array_module(I)
    dtype = _dtype(xp, I, p)
    S_prev = _initial_state(xp, S0, B, d, dtype, "rnn_forward", "S0")
    S = xp.empty((T, B, d), dtype=dtype)
    for t in range(T):
        a = I[t] @ p["U"].T + S_prev @ p["W"].T + p["b"]
        S[t] = a if activation is None else xp.tanh(a)
        S_prev = S[t]
    O = S @ p["V"].T + p["c"]
    return S, O


def rnn_bptt(
    p: Mapping[str, Array],
    I: Array,
    dO: Array,
    S0: Array | None = None,
    activation: str | None = None,
) -> dict[str, Array]:
    """Hand-derived backpropagation through time for :func:`rnn_forward` (article §2).

    With a loss L = Σ_t L_t(O_t), e_t = ∂L/∂O_t (``dO``), a_t the pre-activation of S_t, and
    per sample in column-vector form, the chain rule ("regla de la cadena"; the translation says
    "string") gives::

        dL/dV = Σ_t e_t S_tᵀ                 dL/dc = Σ_t e_t                   (article §2.1)
        δ_T = Vᵀ e_T,   δ_t = Vᵀ e_t + Wᵀ g_{t+1}     (δ_t = ∂L/∂S_t)
        g_t = δ_t ⊙ f'(a_t)                  f' = 1 (linear), 1 − S_t² (tanh)
        dL/dW = Σ_t g_t S_{t-1}ᵀ             dL/dU = Σ_t g_t I_tᵀ              (article §2.2)
        dL/db = Σ_t g_t                      dL/dS_0 = Wᵀ g_1

    In the batched form every Σ_t also sums over the samples, and ``Vᵀ e_t`` is ``e_t V`` per row.

    Args:
        p, I, S0, activation: as for :func:`rnn_forward`.
        dO: ∂L/∂O_t for every step, (T, B, k).

    Returns:
        Gradients ``dict(U, W, b, V, c, S0)`` with the parameters' shapes and ``S0`` (B, d).
    """
    _check_activation(activation, "rnn_bptt")
    n, d, k = _sizes(p, "rnn", "rnn_bptt")
    T, B = _check_input(I, n, "rnn_bptt", "I")
    _check_grad(dO, (T, B, k), "rnn_bptt", "dO")
    xp = get_array_module(I)
    dtype = _dtype(xp, I, p)
    S_init = _initial_state(xp, S0, B, d, dtype, "rnn_bptt", "S0")
    S, _ = rnn_forward(p, I, S_init, activation)

    delta_from_output = dO @ p["V"]  # Vᵀ e_t for each sample, (T, B, d)
    g = xp.empty((T, B, d), dtype=dtype)
    g_next = xp.zeros((B, d), dtype=dtype)
    for t in reversed(range(T)):
        delta = delta_from_output[t] + g_next @ p["W"]  # δ_t = Vᵀ e_t + Wᵀ g_{t+1}
        g[t] = delta if activation is None else delta * (1.0 - S[t] * S[t])
        g_next = g[t]

    return {
        "U": _sum_outer(xp, g, I),
        "W": _sum_outer(xp, g, _previous(xp, S_init, S)),
        "b": g.sum(axis=(0, 1)),
        "V": _sum_outer(xp, dO, S),
        "c": dO.sum(axis=(0, 1)),
        "S0": g[0] @ p["W"],
    }


# --------------------------------------------------------------------------------------------
# LSTM (article §LSTM)


def _check_variant(variant: str, where: str) -> None:
    if variant not in ("standard", "article"):
        raise ValueError(f"article.{where}: variant must be 'standard' or 'article', got {variant!r}")


def _lstm_steps(
    p: Mapping[str, Array], x: Array, h0: Array | None, s0: Array | None, variant: str, where: str
) -> dict[str, Array]:
    """Run the LSTM forward and keep every gate, for :func:`lstm_forward` and :func:`lstm_bptt`."""
    _check_variant(variant, where)
    n, d, _ = _sizes(p, "lstm", where)
    T, B = _check_input(x, n, where, "x")
    xp = get_array_module(x)
    dtype = _dtype(xp, x, p)
    h_prev = _initial_state(xp, h0, B, d, dtype, where, "h0")
    s_prev = _initial_state(xp, s0, B, d, dtype, where, "s0")
    cache = {"h0": h_prev, "s0": s_prev}
    for name in ("i", "f", "o", "s_tilde", "s", "h"):
        cache[name] = xp.empty((T, B, d), dtype=dtype)
    for t in range(T):
        i = sigmoid(x[t] @ p["U_i"].T + h_prev @ p["W_i"].T + p["b_i"])
        f = sigmoid(x[t] @ p["U_f"].T + h_prev @ p["W_f"].T + p["b_f"])
        o = sigmoid(x[t] @ p["U_o"].T + h_prev @ p["W_o"].T + p["b_o"])
        s_tilde = xp.tanh(x[t] @ p["U"].T + h_prev @ p["W"].T + p["b"])
        s = s_tilde * i + s_prev * f
        h = o * xp.tanh(s) if variant == "standard" else o * s
        for name, value in (("i", i), ("f", f), ("o", o), ("s_tilde", s_tilde), ("s", s), ("h", h)):
            cache[name][t] = value
        h_prev, s_prev = h, s
    return cache


def lstm_forward(
    p: Mapping[str, Array],
    x: Array,
    h0: Array | None = None,
    s0: Array | None = None,
    variant: str = "standard",
) -> tuple[Array, Array]:
    """The LSTM of article §LSTM (selective write, read and forget), batched and time-major.

    Per sample, with the article's names (output gate o_t, input gate i_t, forget gate f_t,
    candidate s̃_t, cell state s_t, hidden state h_t)::

        o_t = σ(U_o x_t + W_o h_{t-1} + b_o)     selective write (the article writes it one step
                                                  earlier, o_{t-1}, h_{t-2}: the same equation)
        i_t = σ(U_i x_t + W_i h_{t-1} + b_i)     selective read
        f_t = σ(U_f x_t + W_f h_{t-1} + b_f)     selective forget
        s̃_t = tanh(U x_t + W h_{t-1} + b)        candidate (the article never writes this one)
        s_t = s̃_t ⊙ i_t + s_{t-1} ⊙ f_t
        h_t = o_t ⊙ tanh(s_t)                    variant='standard'
        h_t = o_t ⊙ s_t                          variant='article' (the article's literal form)

    The standard form is Hochreiter & Schmidhuber (1997), whose cell output squashes the cell
    state before the output gate, with the forget gate of Gers, Schmidhuber & Cummins (2000);
    it is what PyTorch's ``nn.LSTM`` computes (PyTorch's c_t is the article's s_t, its g_t the
    candidate s̃_t). U_*: d×n, W_*: d×d, b_*: d.

    Args:
        p: ``dict(U_i, W_i, b_i, U_f, W_f, b_f, U_o, W_o, b_o, U, W, b)``; U, W, b are the
            candidate's.
        x: inputs, (T, B, n).
        h0, s0: initial hidden and cell states (B, d), or ``None`` for zeros.
        variant: ``'standard'`` (default) or ``'article'``.

    Returns:
        ``(h, s)``: hidden states and cell states, each (T, B, d).
    """
    cache = _lstm_steps(p, x, h0, s0, variant, "lstm_forward")
    return cache["h"], cache["s"]


def lstm_bptt(
    p: Mapping[str, Array],
    x: Array,
    dh: Array,
    h0: Array | None = None,
    s0: Array | None = None,
    variant: str = "standard",
) -> dict[str, Array]:
    """Hand-derived backpropagation through time for :func:`lstm_forward`.

    Walking back from t = T, with ∂h_t = dh_t + (gradient reaching h_t from step t+1) and
    ∂s_t = (gradient reaching s_t from step t+1) + the part through h_t, per sample::

        standard:  ∂o_t = ∂h_t ⊙ tanh(s_t)      ∂s_t += ∂h_t ⊙ o_t ⊙ (1 − tanh²(s_t))
        article:   ∂o_t = ∂h_t ⊙ s_t            ∂s_t += ∂h_t ⊙ o_t
        ∂s̃_t = ∂s_t ⊙ i_t     ∂i_t = ∂s_t ⊙ s̃_t
        ∂f_t = ∂s_t ⊙ s_{t-1}  ∂s_{t-1} = ∂s_t ⊙ f_t   (the part that reaches step t-1)
        pre-activations:  ∂a_* = ∂*_t ⊙ *_t ⊙ (1 − *_t) for the gates i, f, o,
                          ∂a = ∂s̃_t ⊙ (1 − s̃_t²) for the candidate
        dL/dU_* = Σ_t ∂a_* x_tᵀ    dL/dW_* = Σ_t ∂a_* h_{t-1}ᵀ    dL/db_* = Σ_t ∂a_*
        ∂h_{t-1} = Σ_* W_*ᵀ ∂a_*   (over the three gates and the candidate)

    Args:
        p, x, h0, s0, variant: as for :func:`lstm_forward`.
        dh: ∂L/∂h_t for every step, (T, B, d). (A loss on s_t directly is not part of the API.)

    Returns:
        Gradients with the parameters' keys and shapes, plus ``h0`` and ``s0`` (B, d).
    """
    cache = _lstm_steps(p, x, h0, s0, variant, "lstm_bptt")
    h, s, i, f, o, s_tilde = (cache[name] for name in ("h", "s", "i", "f", "o", "s_tilde"))
    T, B, d = h.shape
    _check_grad(dh, (T, B, d), "lstm_bptt", "dh")
    xp = get_array_module(x)
    s_prev_all = _previous(xp, cache["s0"], s)
    h_prev_all = _previous(xp, cache["h0"], h)

    da = {gate: xp.empty_like(h) for gate in ("i", "f", "o", "")}  # "" is the candidate
    dh_next = xp.zeros_like(h[0])
    ds_next = xp.zeros_like(h[0])
    for t in reversed(range(T)):
        dh_t = dh[t] + dh_next
        if variant == "standard":
            tanh_s = xp.tanh(s[t])
            do = dh_t * tanh_s
            ds = ds_next + dh_t * o[t] * (1.0 - tanh_s * tanh_s)
        else:
            do = dh_t * s[t]
            ds = ds_next + dh_t * o[t]
        ds_tilde = ds * i[t]
        di = ds * s_tilde[t]
        df = ds * s_prev_all[t]
        ds_next = ds * f[t]
        da["i"][t] = di * i[t] * (1.0 - i[t])
        da["f"][t] = df * f[t] * (1.0 - f[t])
        da["o"][t] = do * o[t] * (1.0 - o[t])
        da[""][t] = ds_tilde * (1.0 - s_tilde[t] * s_tilde[t])
        dh_next = da["i"][t] @ p["W_i"] + da["f"][t] @ p["W_f"] + da["o"][t] @ p["W_o"] + da[""][t] @ p["W"]

    grads: dict[str, Array] = {}
    for gate in ("i", "f", "o", ""):
        suffix = f"_{gate}" if gate else ""
        grads["U" + suffix] = _sum_outer(xp, da[gate], x)
        grads["W" + suffix] = _sum_outer(xp, da[gate], h_prev_all)
        grads["b" + suffix] = da[gate].sum(axis=(0, 1))
    grads = {key: grads[key] for key in CELLS["lstm"].param_keys}
    grads["h0"] = dh_next
    grads["s0"] = ds_next
    return grads


# --------------------------------------------------------------------------------------------
# GRU (article §GRU: the article only mentions it, and wrongly)


def _gru_steps(p: Mapping[str, Array], x: Array, h0: Array | None, where: str) -> dict[str, Array]:
    """Run the GRU forward and keep every gate, for :func:`gru_forward` and :func:`gru_bptt`."""
    n, d, _ = _sizes(p, "gru", where)
    T, B = _check_input(x, n, where, "x")
    xp = get_array_module(x)
    dtype = _dtype(xp, x, p)
    h_prev = _initial_state(xp, h0, B, d, dtype, where, "h0")
    cache = {"h0": h_prev}
    for name in ("r", "z", "n", "hn", "h"):
        cache[name] = xp.empty((T, B, d), dtype=dtype)
    for t in range(T):
        r = sigmoid(x[t] @ p["U_r"].T + h_prev @ p["W_r"].T + p["b_r"])
        z = sigmoid(x[t] @ p["U_z"].T + h_prev @ p["W_z"].T + p["b_z"])
        hn = h_prev @ p["W_n"].T + p["b_hn"]
        n_t = xp.tanh(x[t] @ p["U_n"].T + p["b_in"] + r * hn)
        h = (1.0 - z) * n_t + z * h_prev
        for name, value in (("r", r), ("z", z), ("n", n_t), ("hn", hn), ("h", h)):
            cache[name][t] = value
        h_prev = h
    return cache


def gru_forward(p: Mapping[str, Array], x: Array, h0: Array | None = None) -> Array:
    """The gated recurrent unit (GRU) in PyTorch's (and cuDNN's) form, batched and time-major.

    The article says only that a GRU has no forget gate and "only input and output gates"; that is
    wrong. The GRU of Cho et al. (2014) has a reset gate r_t and an update gate z_t, and no
    output gate (the whole state is exposed). Per sample::

        r_t = σ(U_r x_t + W_r h_{t-1} + b_r)                 reset gate
        z_t = σ(U_z x_t + W_z h_{t-1} + b_z)                 update gate
        n_t = tanh(U_n x_t + b_in + r_t ⊙ (W_n h_{t-1} + b_hn))   candidate
        h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t-1}

    This is PyTorch's ``nn.GRU``. Cho et al. apply the reset gate *before* the matmul,
    ``W_n (r_t ⊙ h_{t-1})``, which is a different function. The update rule is theirs: z_t = 1
    keeps the old state (some later texts, e.g. Chung et al. 2014, swap z_t and 1 − z_t).
    U_*: d×n, W_*: d×d, b_*: d.

    Args:
        p: ``dict(U_r, W_r, b_r, U_z, W_z, b_z, U_n, W_n, b_in, b_hn)``.
        x: inputs, (T, B, n).
        h0: initial state (B, d), or ``None`` for zeros.

    Returns:
        h: hidden states, (T, B, d).
    """
    return _gru_steps(p, x, h0, "gru_forward")["h"]


def gru_bptt(p: Mapping[str, Array], x: Array, dh: Array, h0: Array | None = None) -> dict[str, Array]:
    """Hand-derived backpropagation through time for :func:`gru_forward`.

    With ∂h_t = dh_t + (gradient reaching h_t from step t+1), hn_t = W_n h_{t-1} + b_hn, per
    sample::

        ∂z_t = ∂h_t ⊙ (h_{t-1} − n_t)        ∂n_t = ∂h_t ⊙ (1 − z_t)
        ∂a_n = ∂n_t ⊙ (1 − n_t²)             (pre-activation of n_t)
        ∂hn_t = ∂a_n ⊙ r_t                   ∂r_t = ∂a_n ⊙ hn_t
        ∂a_r = ∂r_t ⊙ r_t ⊙ (1 − r_t)        ∂a_z = ∂z_t ⊙ z_t ⊙ (1 − z_t)
        dL/dU_r = Σ_t ∂a_r x_tᵀ   dL/dW_r = Σ_t ∂a_r h_{t-1}ᵀ   dL/db_r = Σ_t ∂a_r   (same for z)
        dL/dU_n = Σ_t ∂a_n x_tᵀ   dL/db_in = Σ_t ∂a_n
        dL/dW_n = Σ_t ∂hn_t h_{t-1}ᵀ          dL/db_hn = Σ_t ∂hn_t
        ∂h_{t-1} = ∂h_t ⊙ z_t + W_rᵀ ∂a_r + W_zᵀ ∂a_z + W_nᵀ ∂hn_t

    Args:
        p, x, h0: as for :func:`gru_forward`.
        dh: ∂L/∂h_t for every step, (T, B, d).

    Returns:
        Gradients with the parameters' keys and shapes, plus ``h0`` (B, d).
    """
    cache = _gru_steps(p, x, h0, "gru_bptt")
    h, r, z, n_gate, hn = (cache[name] for name in ("h", "r", "z", "n", "hn"))
    T, B, d = h.shape
    _check_grad(dh, (T, B, d), "gru_bptt", "dh")
    xp = get_array_module(x)
    h_prev_all = _previous(xp, cache["h0"], h)

    da_r = xp.empty_like(h)
    da_z = xp.empty_like(h)
    da_n = xp.empty_like(h)
    dhn = xp.empty_like(h)
    dh_next = xp.zeros_like(h[0])
    for t in reversed(range(T)):
        dh_t = dh[t] + dh_next
        dz = dh_t * (h_prev_all[t] - n_gate[t])
        dn = dh_t * (1.0 - z[t])
        da_n[t] = dn * (1.0 - n_gate[t] * n_gate[t])
        dhn[t] = da_n[t] * r[t]
        dr = da_n[t] * hn[t]
        da_r[t] = dr * r[t] * (1.0 - r[t])
        da_z[t] = dz * z[t] * (1.0 - z[t])
        dh_next = dh_t * z[t] + da_r[t] @ p["W_r"] + da_z[t] @ p["W_z"] + dhn[t] @ p["W_n"]

    return {
        "U_r": _sum_outer(xp, da_r, x),
        "W_r": _sum_outer(xp, da_r, h_prev_all),
        "b_r": da_r.sum(axis=(0, 1)),
        "U_z": _sum_outer(xp, da_z, x),
        "W_z": _sum_outer(xp, da_z, h_prev_all),
        "b_z": da_z.sum(axis=(0, 1)),
        "U_n": _sum_outer(xp, da_n, x),
        "W_n": _sum_outer(xp, dhn, h_prev_all),
        "b_in": da_n.sum(axis=(0, 1)),
        "b_hn": dhn.sum(axis=(0, 1)),
        "h0": dh_next,
    }


# --------------------------------------------------------------------------------------------
# one object per cell: what the generic functions below need to know


class ArticleCell:
    """One of the article's models, as the generic functions (:func:`forward`, :func:`bptt`,
    :func:`init_params`, :func:`to_state_dict`, ...) see it. The instances are :data:`CELLS`.

    Attributes:
        name: ``'rnn'``, ``'lstm'`` or ``'gru'``.
        param_keys: its parameters, in the article's notation (:data:`PARAM_KEYS`).
        state_keys: its initial states, also the keys of their gradients (:data:`STATE_KEYS`).
        options: the keyword options of :func:`forward` it takes (``activation``, ``variant``).
        torch_gates: PyTorch's row blocks of ``weight_ih``/``weight_hh``, as the suffix of the article's
            ``U_*``/``W_*`` names (the LSTM's candidate s̃ is the plain ``U``, ``W``, ``b``).
        own_hh_bias: the blocks whose hidden bias (PyTorch's ``b_hh``) the article keeps apart, as
            ``b_h*`` next to ``b_i*`` (the GRU's n gate); elsewhere the two biases always appear summed,
            so the article has one, ``b_*``.
        torch_extra: PyTorch-layout keys beyond the layer's, and the article parameter each holds.
    """

    name: str
    param_keys: tuple[str, ...]
    state_keys: tuple[str, ...] = ("h0",)
    options: tuple[str, ...] = ()
    torch_gates: tuple[str, ...]
    own_hh_bias: tuple[int, ...] = ()
    torch_extra: dict[str, str] = {}

    def shapes(self, n: int, d: int, k: int) -> dict[str, tuple[int, ...]]:
        """The shape each parameter must have for input size n, d units and k outputs."""
        return {key: (d, n) if key[0] == "U" else (d, d) if key[0] == "W" else (d,) for key in self.param_keys}

    def sizes(self, p: Arrays) -> tuple[int, int, int]:
        """(n, d, k) read off the parameters (k = 0 where there is no output layer)."""
        d, n = p["U" + self.torch_gates[0]].shape
        return n, d, 0

    def forward(self, p: Arrays, x: Array, states: Arrays, **options: Any) -> Array:
        """The output sequence a loss is taken on (see :func:`forward`)."""
        raise NotImplementedError

    def bptt(self, p: Arrays, x: Array, d_out: Array, states: Arrays, **options: Any) -> Params:
        """The hand-derived gradients (see :func:`bptt`)."""
        raise NotImplementedError

    def final_states(self, p: Arrays, x: Array, states: Arrays, **options: Any) -> Params:
        """The states after the last step of ``x``, named as initial states for the next chunk."""
        raise NotImplementedError


class _RNN(ArticleCell):
    name, param_keys, state_keys = "rnn", ("U", "W", "b", "V", "c"), ("S0",)
    options = ("activation",)
    torch_gates = ("",)
    torch_extra = {"fc.weight": "V", "fc.bias": "c"}

    def shapes(self, n: int, d: int, k: int) -> dict[str, tuple[int, ...]]:
        return {"U": (d, n), "W": (d, d), "b": (d,), "V": (k, d), "c": (k,)}

    def sizes(self, p: Arrays) -> tuple[int, int, int]:
        n, d, _ = super().sizes(p)
        return n, d, p["V"].shape[0] if len(p["V"].shape) == 2 else 0

    def forward(self, p: Arrays, x: Array, states: Arrays, **options: Any) -> Array:
        return rnn_forward(p, x, states.get("S0"), **options)[1]

    def bptt(self, p: Arrays, x: Array, d_out: Array, states: Arrays, **options: Any) -> Params:
        return rnn_bptt(p, x, d_out, states.get("S0"), **options)

    def final_states(self, p: Arrays, x: Array, states: Arrays, **options: Any) -> Params:
        return {"S0": rnn_forward(p, x, states.get("S0"), **options)[0][-1]}


class _LSTM(ArticleCell):
    name, state_keys = "lstm", ("h0", "s0")
    param_keys = ("U_i", "W_i", "b_i", "U_f", "W_f", "b_f", "U_o", "W_o", "b_o", "U", "W", "b")
    options = ("variant",)
    torch_gates = ("_i", "_f", "", "_o")

    def forward(self, p: Arrays, x: Array, states: Arrays, **options: Any) -> Array:
        return lstm_forward(p, x, states.get("h0"), states.get("s0"), **options)[0]

    def bptt(self, p: Arrays, x: Array, d_out: Array, states: Arrays, **options: Any) -> Params:
        return lstm_bptt(p, x, d_out, states.get("h0"), states.get("s0"), **options)

    def final_states(self, p: Arrays, x: Array, states: Arrays, **options: Any) -> Params:
        h, s = lstm_forward(p, x, states.get("h0"), states.get("s0"), **options)
        return {"h0": h[-1], "s0": s[-1]}


class _GRU(ArticleCell):
    name = "gru"
    param_keys = ("U_r", "W_r", "b_r", "U_z", "W_z", "b_z", "U_n", "W_n", "b_in", "b_hn")
    torch_gates = ("_r", "_z", "_n")
    own_hh_bias = (2,)

    def forward(self, p: Arrays, x: Array, states: Arrays, **options: Any) -> Array:
        return gru_forward(p, x, states.get("h0"))

    def bptt(self, p: Arrays, x: Array, d_out: Array, states: Arrays, **options: Any) -> Params:
        return gru_bptt(p, x, d_out, states.get("h0"))

    def final_states(self, p: Arrays, x: Array, states: Arrays, **options: Any) -> Params:
        return {"h0": gru_forward(p, x, states.get("h0"))[-1]}


CELLS: dict[str, ArticleCell] = {cell.name: cell for cell in (_RNN(), _LSTM(), _GRU())}
"""The article's models by name: ``'rnn'``, ``'lstm'``, ``'gru'``."""

PARAM_KEYS: dict[str, tuple[str, ...]] = {name: cell.param_keys for name, cell in CELLS.items()}
"""The parameter names of each cell, in the article's notation."""

STATE_KEYS: dict[str, tuple[str, ...]] = {name: cell.state_keys for name, cell in CELLS.items()}
"""The initial-state names of each cell (also the keys of their gradients)."""


# --------------------------------------------------------------------------------------------
# one interface for the three cells

_DEFAULTS = {"variant": "standard", "activation": None}


def _resolve(
    cell: str, variant: str, activation: str | None, where: str, states: Mapping[str, Array] | None = None
) -> tuple[ArticleCell, dict[str, Any]]:
    """The cell's object and the options it takes; raises on unknown states or options of another cell."""
    spec = _cell(cell)
    unknown = sorted(set(states or {}) - set(spec.state_keys))
    if unknown:
        raise ValueError(
            f"article.{where}: unknown initial state(s) {unknown} for {cell!r}; expected {spec.state_keys}"
        )
    given = {"variant": variant, "activation": activation}
    for option, value in given.items():
        if option not in spec.options and value != _DEFAULTS[option]:
            owner = next(name for name, other in CELLS.items() if option in other.options)
            raise ValueError(f"article.{where}: {option}={value!r} only applies to cell={owner!r}, not {cell!r}")
    return spec, {option: given[option] for option in spec.options}


def forward(
    cell: str,
    p: Mapping[str, Array],
    x: Array,
    states: Mapping[str, Array] | None = None,
    *,
    variant: str = "standard",
    activation: str | None = None,
) -> Array:
    """The output sequence a loss is taken on: O (T, B, k) for ``'rnn'``, h (T, B, d) otherwise.

    Args:
        cell: ``'rnn'``, ``'lstm'`` or ``'gru'``.
        p: the cell's parameters (:data:`PARAM_KEYS`).
        x: inputs, (T, B, n).
        states: initial states by name (:data:`STATE_KEYS`: ``S0``; ``h0``, ``s0``; ``h0``);
            a missing one is zero.
        variant: the LSTM's ``'standard'`` or ``'article'`` form.
        activation: the RNN's ``None`` (linear) or ``'tanh'``.
    """
    spec, options = _resolve(cell, variant, activation, "forward", states)
    return spec.forward(p, x, states or {}, **options)


def bptt(
    cell: str,
    p: Mapping[str, Array],
    x: Array,
    d_out: Array,
    states: Mapping[str, Array] | None = None,
    *,
    variant: str = "standard",
    activation: str | None = None,
) -> dict[str, Array]:
    """The hand-derived gradients of ``cell``, given ∂L/∂(output of :func:`forward`).

    Args:
        cell, p, x, states, variant, activation: as for :func:`forward`.
        d_out: ∂L/∂O (T, B, k) for ``'rnn'``, ∂L/∂h (T, B, d) for ``'lstm'`` and ``'gru'``.

    Returns:
        One gradient per parameter and per initial state (:data:`STATE_KEYS`).
    """
    spec, options = _resolve(cell, variant, activation, "bptt", states)
    return spec.bptt(p, x, d_out, states or {}, **options)


def truncated_bptt(
    cell: str,
    p: Mapping[str, Array],
    x: Array,
    d_out: Array,
    chunk_size: int,
    states: Mapping[str, Array] | None = None,
    *,
    variant: str = "standard",
    activation: str | None = None,
) -> dict[str, Array]:
    """Truncated BPTT: gradients that stop at every ``chunk_size`` steps.

    The sequence is cut into chunks of ``chunk_size`` steps (the last may be shorter). The forward
    pass is unchanged, but each chunk starts from the previous chunk's final state taken as a
    constant, so no gradient flows across a cut (the tape does this with ``detach()``). The result
    is the sum over chunks of each chunk's BPTT gradients; the initial-state gradients are those
    of the first chunk. ``chunk_size >= T`` gives full BPTT.

    Args:
        cell, p, x, d_out, states, variant, activation: as for :func:`bptt`.
        chunk_size: steps per chunk, ≥ 1.

    Returns:
        One gradient per parameter and per initial state.
    """
    spec, options = _resolve(cell, variant, activation, "truncated_bptt", states)
    if chunk_size < 1:
        raise ValueError(f"article.truncated_bptt: chunk_size must be >= 1, got {chunk_size}")
    total: dict[str, Array] = {}
    chunk_states = states
    for start in range(0, x.shape[0], chunk_size):
        x_chunk = x[start : start + chunk_size]
        d_chunk = d_out[start : start + chunk_size]
        grads = bptt(cell, p, x_chunk, d_chunk, chunk_states, variant=variant, activation=activation)
        if not total:
            total = grads
        else:
            for key in spec.param_keys:
                total[key] = total[key] + grads[key]
        chunk_states = spec.final_states(p, x_chunk, chunk_states or {}, **options)
    return total


def sgd_update(p: Mapping[str, Array], grads: Mapping[str, Array], lr: float) -> Params:
    """The article's update rule, ``V_new = V_old − η dL/dV``, for every parameter (article §2.1, §2.2).

    Called once per sample it is stochastic gradient descent, once per batch (with the gradient of
    the batch's mean loss) mini-batch gradient descent. Returns new arrays; ``p`` is not changed.
    Keys of ``grads`` that are not parameters (the initial-state gradients) are ignored.
    """
    return {key: p[key] - lr * grads[key] for key in p}


def init_params(
    cell: str,
    input_size: int,
    hidden_size: int,
    output_size: int | None = None,
    *,
    seed: int = 0,
    dtype: Any = np.float64,
) -> Params:
    """Random NumPy parameters for ``cell``, drawn like PyTorch's: uniform(−1/√d, 1/√d).

    Args:
        cell: ``'rnn'``, ``'lstm'`` or ``'gru'``.
        input_size: n.
        hidden_size: d.
        output_size: k, the RNN's output size (required for ``'rnn'``, ignored otherwise).
        seed: seed of the NumPy generator.
        dtype: the arrays' dtype.
    """
    spec = _cell(cell)
    if spec.torch_extra and output_size is None:
        raise ValueError(f"article.init_params: cell={cell!r} needs output_size (k, the size of O_t)")
    rng = np.random.default_rng(seed)
    bound = 1.0 / np.sqrt(hidden_size)
    shapes = spec.shapes(input_size, hidden_size, output_size or 0)
    return {key: rng.uniform(-bound, bound, size=shape).astype(dtype) for key, shape in shapes.items()}


# --------------------------------------------------------------------------------------------
# PyTorch layout


def _as_numpy(value: Any) -> np.ndarray:
    """A NumPy array from an array, a list, a CuPy array, a PyTorch tensor, or a tinygrad_rnn Tensor."""
    if is_torch_tensor(value):
        return value.detach().cpu().numpy()
    return to_numpy(getattr(value, "array", value))  # a Tensor's backend array, or an array-like


def to_state_dict(p: Mapping[str, Array], cell: str) -> dict[str, np.ndarray]:
    """The parameters under PyTorch's ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` keys and layout.

    * ``weight_ih_l0`` (gates·d, n) and ``weight_hh_l0`` (gates·d, d) stack the gates' U and W
      in PyTorch's order: LSTM ``i, f, g, o`` (g is the candidate s̃: U, W, b), GRU ``r, z, n``.
    * Each article bias goes into ``bias_ih_l0``; ``bias_hh_l0`` is zero, except the GRU's n rows,
      which hold ``b_hn`` (``b_in`` goes to the n rows of ``bias_ih_l0``).
    * ``'rnn'`` also gives ``fc.weight`` = V and ``fc.bias`` = c, for an ``nn.Linear`` named ``fc``.

    Args:
        p: the article parameters (:data:`PARAM_KEYS`).
        cell: ``'rnn'``, ``'lstm'`` or ``'gru'``.

    Returns:
        An ordered dict of NumPy arrays (copied from the GPU if needed).
    """
    spec = _cell(cell)
    _sizes(p, cell, "to_state_dict")
    a = {key: _as_numpy(p[key]) for key in spec.param_keys}
    bias_ih, bias_hh = [], []
    for block, gate in enumerate(spec.torch_gates):
        if block in spec.own_hh_bias:
            bias_ih.append(a["b_i" + gate[1:]])
            bias_hh.append(a["b_h" + gate[1:]])
        else:
            bias_ih.append(a["b" + gate])
            bias_hh.append(np.zeros_like(a["b" + gate]))
    sd = {
        "weight_ih_l0": np.concatenate([a["U" + gate] for gate in spec.torch_gates]),
        "weight_hh_l0": np.concatenate([a["W" + gate] for gate in spec.torch_gates]),
        "bias_ih_l0": np.concatenate(bias_ih),
        "bias_hh_l0": np.concatenate(bias_hh),
    }
    sd.update({key: a[name].copy() for key, name in spec.torch_extra.items()})
    return sd


def from_state_dict(sd: Mapping[str, Any], cell: str) -> Params:
    """The article parameters of a PyTorch-layout state dict (the inverse of :func:`to_state_dict`).

    ``bias_ih_l0 + bias_hh_l0`` becomes the article's single bias per gate (the two always appear
    summed), except for the GRU's n gate, whose ``b_hn`` sits inside ``r_t ⊙ (…)`` and is kept
    apart from ``b_in``. A layer built with ``bias=False`` (neither bias key) gives zero biases.

    Args:
        sd: ``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0`` (and ``fc.weight``,
            ``fc.bias`` for ``'rnn'``). Values: anything ``numpy.asarray`` takes, CuPy arrays, or
            objects with a ``.numpy()`` method (our Tensors, CPU PyTorch tensors).
        cell: ``'rnn'``, ``'lstm'`` or ``'gru'``.

    Returns:
        A parameter dict of NumPy arrays (:data:`PARAM_KEYS`), dtypes kept.

    Raises:
        KeyError: missing or unexpected keys (named in the message).
        ValueError: shapes that do not fit the cell.
    """
    spec = _cell(cell)
    required = ["weight_ih_l0", "weight_hh_l0", *spec.torch_extra]
    optional = ["bias_ih_l0", "bias_hh_l0"]
    missing = [key for key in required if key not in sd]
    has_bias = [key in sd for key in optional]
    if any(has_bias) and not all(has_bias):
        missing += [key for key, present in zip(optional, has_bias, strict=True) if not present]
    unexpected = [key for key in sd if key not in required + optional]
    if missing or unexpected:
        raise KeyError(f"article.from_state_dict({cell!r}): missing keys {missing}, unexpected keys {unexpected}")

    w_ih = _as_numpy(sd["weight_ih_l0"])
    w_hh = _as_numpy(sd["weight_hh_l0"])
    gates = len(spec.torch_gates)
    if w_hh.ndim != 2 or w_hh.shape[0] != gates * w_hh.shape[1]:
        raise ValueError(
            f"article.from_state_dict({cell!r}): weight_hh_l0 has shape {w_hh.shape}, expected ({gates}·d, d)"
        )
    d = w_hh.shape[1]
    if all(has_bias):
        b_ih = _as_numpy(sd["bias_ih_l0"])
        b_hh = _as_numpy(sd["bias_hh_l0"])
    else:
        b_ih = np.zeros(gates * d, dtype=w_hh.dtype)
        b_hh = np.zeros(gates * d, dtype=w_hh.dtype)
    for name, value in (("weight_ih_l0", w_ih), ("bias_ih_l0", b_ih), ("bias_hh_l0", b_hh)):
        if value.shape[0] != gates * d:
            raise ValueError(
                f"article.from_state_dict({cell!r}): {name} has {value.shape[0]} rows, "
                f"expected {gates}·d = {gates * d}"
            )

    def rows(array: np.ndarray, block: int) -> np.ndarray:
        return array[block * d : (block + 1) * d].copy()

    p: Params = {}
    for block, gate in enumerate(spec.torch_gates):
        p["U" + gate] = rows(w_ih, block)
        p["W" + gate] = rows(w_hh, block)
        if block in spec.own_hh_bias:
            p["b_i" + gate[1:]] = rows(b_ih, block)
            p["b_h" + gate[1:]] = rows(b_hh, block)
        else:
            p["b" + gate] = rows(b_ih, block) + rows(b_hh, block)
    p.update({name: _as_numpy(sd[key]).copy() for key, name in spec.torch_extra.items()})
    p = {key: p[key] for key in spec.param_keys}
    _sizes(p, cell, "from_state_dict")
    return p


# --------------------------------------------------------------------------------------------
# finite-difference check of the hand-derived gradients


@dataclass(frozen=True)
class GradCheckResult:
    """How one hand-derived gradient compares with its finite-difference estimate.

    Attributes:
        name: the parameter or initial-state name.
        max_abs_error: max |analytic − numeric| over its entries.
        max_rel_error: ``max_abs_error / max(max|analytic|, max|numeric|)`` (0 when both are 0).
        passed: ``max_abs_error <= atol + rtol * max(max|analytic|, max|numeric|)``.
    """

    name: str
    max_abs_error: float
    max_rel_error: float
    passed: bool


def _float64_copy(xp: Any, arrays: Mapping[str, Array]) -> dict[str, Array]:
    return {key: xp.array(value, dtype=xp.float64) for key, value in arrays.items()}


def finite_difference_gradients(
    cell: str,
    p: Mapping[str, Array],
    x: Array,
    d_out: Array,
    states: Mapping[str, Array] | None = None,
    *,
    variant: str = "standard",
    activation: str | None = None,
    eps: float = 1e-5,
) -> dict[str, Array]:
    """Central finite differences, in float64, of L = Σ d_out ⊙ forward(cell, p, x, states).

    L is linear in the output with ∂L/∂output = ``d_out``, so these estimate exactly what
    :func:`bptt` returns for the same ``d_out``: ∂L/∂θ ≈ (L(θ + ε) − L(θ − ε)) / 2ε, one entry at
    a time, for every parameter and every initial state (zero where ``states`` omits one).
    It costs two forward passes per entry: keep the sizes small.

    Returns:
        One float64 array per parameter and per initial state (:data:`STATE_KEYS`).
    """
    spec, options = _resolve(cell, variant, activation, "finite_difference_gradients", states)
    xp = get_array_module(x)
    params = _float64_copy(xp, p)
    x64 = xp.asarray(x, dtype=xp.float64)
    d_out64 = xp.asarray(d_out, dtype=xp.float64)
    _, B, _ = x64.shape
    _, d, _ = _sizes(params, cell, "finite_difference_gradients")
    init = {key: xp.zeros((B, d), dtype=xp.float64) for key in spec.state_keys}
    init.update(_float64_copy(xp, states or {}))

    def loss() -> float:
        return float((d_out64 * spec.forward(params, x64, init, **options)).sum())

    arrays = {**params, **init}
    return dict(zip(arrays, central_differences(loss, list(arrays.values()), eps), strict=True))


def compare_gradients(
    analytic: Mapping[str, Array], reference: Mapping[str, Array], *, rtol: float, atol: float
) -> dict[str, GradCheckResult]:
    """Compare two gradient dicts key by key (the keys of ``reference``); see :class:`GradCheckResult`."""
    results: dict[str, GradCheckResult] = {}
    for key, ref in reference.items():
        xp = get_array_module(ref)
        a = xp.asarray(analytic[key], dtype=xp.float64)
        r = xp.asarray(ref, dtype=xp.float64)
        if a.shape != r.shape:
            raise ValueError(f"article.compare_gradients: {key!r} has shapes {a.shape} and {r.shape}")
        abs_error = float(xp.abs(a - r).max()) if a.size else 0.0
        scale = max(float(xp.abs(a).max()), float(xp.abs(r).max())) if a.size else 0.0
        rel_error = abs_error / scale if scale > 0.0 else 0.0
        passed = abs_error <= atol + rtol * scale
        results[key] = GradCheckResult(key, abs_error, rel_error, passed)
    return results


def check_bptt_finite_differences(
    cell: str,
    p: Mapping[str, Array],
    x: Array,
    d_out: Array,
    states: Mapping[str, Array] | None = None,
    *,
    variant: str = "standard",
    activation: str | None = None,
    eps: float = 1e-5,
    rtol: float = 1e-6,
    atol: float = 1e-9,
) -> dict[str, GradCheckResult]:
    """Check the hand-derived BPTT of ``cell`` against float64 central finite differences.

    Both sides are computed in float64 for the loss L = Σ d_out ⊙ output (see
    :func:`finite_difference_gradients`). With ε = 1e-5 the estimate's own error (ε² truncation,
    1e-16/ε rounding) stays below about 1e-8 relative for the sizes tested, so ``rtol=1e-6``
    leaves a wide margin without hiding a wrong formula (a factor 1.001 fails it).

    Example:
        >>> p = init_params("lstm", 3, 4, seed=0)
        >>> x = np.random.default_rng(1).normal(size=(5, 2, 3))
        >>> dh = np.random.default_rng(2).normal(size=(5, 2, 4))
        >>> all(r.passed for r in check_bptt_finite_differences("lstm", p, x, dh).values())
        True

    Returns:
        One :class:`GradCheckResult` per parameter and per initial state.
    """
    xp = get_array_module(x)
    params = _float64_copy(xp, p)
    x64 = xp.asarray(x, dtype=xp.float64)
    d_out64 = xp.asarray(d_out, dtype=xp.float64)
    states64 = _float64_copy(xp, states) if states else None
    analytic = bptt(cell, params, x64, d_out64, states64, variant=variant, activation=activation)
    numeric = finite_difference_gradients(
        cell, params, x64, d_out64, states64, variant=variant, activation=activation, eps=eps
    )
    return compare_gradients(analytic, numeric, rtol=rtol, atol=atol)

