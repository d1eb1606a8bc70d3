"""Check the tape against the article's hand-derived BPTT, and the hand-derived BPTT against finite differences.

For each model of ``tinygrad_rnn.article`` (the article's linear RNN, the tanh RNN, the standard and the
article's LSTM, the GRU) this script builds the same model on the tape, takes the same loss, calls
``loss.backward()`` and compares every gradient with the hand-derived one, in float64. It prints a table:

    model × parameter × max abs error × max relative error × pass/fail

where the relative error is ``max |tape − hand| / max |hand|`` over one parameter's gradient, and a row passes
at ≤ 1e-10 (with an absolute floor of 1e-13 × the largest entry of any gradient of the model: a gradient that
is a near-cancelling sum, e.g. a single-entry dL/dV of 1e-3 summed from terms of size 1, cannot be computed
to 1e-10 of itself by two different summation orders). A second group of rows compares the hand-derived
gradients with central finite differences (passing at ≤ 1e-6, the accuracy of the estimate). It exits with
status 1 if any row fails.

How each model is put on the tape:

* tanh RNN, standard LSTM, GRU: the ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` layers (plus ``nn.Linear`` for the
  RNN's output V, c), loaded with ``article.to_state_dict``;
* the article's linear RNN and the article's LSTM (``h_t = o_t ⊙ s_t``) have no PyTorch layer, so they are
  written step by step from Tensor ops (``@``, ``+``, ``*``, ``sigmoid``, ``tanh``).

Truncated BPTT rows cut the graph with ``detach()`` every few steps on the tape, and use
``article.truncated_bptt`` on the hand-derived side.

Usage::

    tinygrad-rnn check [--steps 12] [--batch-size 3] [--seed 0] [--device cpu] [--threads 1] [--out DIR]
    python examples/article_check.py [same options]

This module sits at the top of the package, beside the examples: it imports both ``article`` and the tape
(``article`` itself never imports the tape).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from tinygrad_rnn import Tensor, article, nn, stack

__all__ = ["main", "run_checks", "format_table", "make_problem", "tape_gradients", "new_layer", "Model", "State"]

RNN_LAYER_KEYS = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
TAPE_RTOL = 1e-10
TAPE_ATOL_FACTOR = 1e-13  # times the largest gradient entry of the model
FD_RTOL = 1e-6
State = tuple[Tensor, ...]  # (S,), (h, s) or (h,): the recurrent state on the tape


# ------------------------------------------------------------------------------------------------
# the same models on the tape


def _leaf(array: np.ndarray, device: str = "cpu") -> Tensor:
    return Tensor(array, requires_grad=True, dtype=np.float64, device=device)


def _linear_rnn_outputs(p: dict[str, Tensor], x: Tensor, state: State) -> tuple[Tensor, State]:
    """The article's linear RNN, one step at a time: S_t = I_t Uᵀ + S_{t-1} Wᵀ + b, O_t = S_t Vᵀ + c."""
    (S,) = state
    outputs = []
    for t in range(x.shape[0]):
        S = x[t] @ p["U"].T + S @ p["W"].T + p["b"]
        outputs.append(S @ p["V"].T + p["c"])
    return stack(outputs, axis=0), (S,)


def _article_lstm_outputs(p: dict[str, Tensor], x: Tensor, state: State) -> tuple[Tensor, State]:
    """The article's LSTM, one step at a time, ending with h_t = o_t ⊙ s_t (no tanh)."""
    h, s = state

    def gate(suffix: str, x_t: Tensor, h_prev: Tensor) -> Tensor:
        return x_t @ p["U" + suffix].T + h_prev @ p["W" + suffix].T + p["b" + suffix]

    outputs = []
    for t in range(x.shape[0]):
        i = gate("_i", x[t], h).sigmoid()
        f = gate("_f", x[t], h).sigmoid()
        o = gate("_o", x[t], h).sigmoid()
        s_tilde = gate("", x[t], h).tanh()
        s = s_tilde * i + s * f
        h = o * s
        outputs.append(h)
    return stack(outputs, axis=0), (h, s)


class Model(NamedTuple):
    """One model of the article module and how it is put on the tape.

    Either ``layer`` builds the ``nn`` layer that computes it (loaded with ``article.to_state_dict``; the RNN
    adds an ``nn.Linear`` for V, c), or ``steps`` computes it from Tensor ops, ``(params, x, state) ->
    (output, state)``, where PyTorch has no such layer.
    """

    label: str
    cell: str
    opts: dict[str, Any]
    layer: Callable[[int, int], nn.Module] | None = None
    steps: Callable[[dict[str, Tensor], Tensor, State], tuple[Tensor, State]] | None = None


MODELS: list[Model] = [
    Model("rnn (linear, article)", "rnn", {"activation": None}, steps=_linear_rnn_outputs),
    Model("rnn (tanh)", "rnn", {"activation": "tanh"},
          layer=lambda n, d: nn.RNN(n, d, nonlinearity="tanh", dtype=np.float64)),
    Model("lstm (standard)", "lstm", {"variant": "standard"}, layer=lambda n, d: nn.LSTM(n, d, dtype=np.float64)),
    Model("lstm (article)", "lstm", {"variant": "article"}, steps=_article_lstm_outputs),
    Model("gru", "gru", {}, layer=lambda n, d: nn.GRU(n, d, dtype=np.float64)),
]
"""Every model of the article module, in the order of the table."""


def _model(cell: str, variant: str = "standard", activation: str | None = None) -> Model:
    """The model of ``MODELS`` that ``cell`` with these options names."""
    options = {"variant": variant, "activation": activation}
    for model in MODELS:
        if model.cell == cell and all(options[key] == value for key, value in model.opts.items()):
            return model
    raise ValueError(f"article_check: no model {cell!r} with {options}")


def new_layer(cell: str, input_size: int, hidden_size: int) -> nn.Module:
    """A freshly initialised float64 ``nn`` layer of the article's kind: ``rnn`` (tanh), ``lstm`` or ``gru``."""
    layer = next(model.layer for model in MODELS if model.cell == cell and model.layer is not None)
    return layer(input_size, hidden_size)


def _grad(t: Tensor) -> np.ndarray:
    """The gradient backward() left in ``t.grad``, as a NumPy array."""
    if t.grad is None:
        raise RuntimeError("article_check: a tensor of the check received no gradient")
    return t.grad.numpy()


def _article_grads_of_layer(layer: nn.Module, fc: nn.Linear | None, cell: str) -> dict[str, np.ndarray]:
    """The article-named gradients of an ``nn`` layer's parameters (and of ``fc``'s: V, c).

    The article's single bias b stands for b_ih + b_hh, so dL/db = dL/db_ih (= dL/db_hh); only the blocks
    the article keeps apart (``ArticleCell.own_hh_bias``: the GRU's n gate, b_in and b_hn) keep bias_hh's
    gradient. Mapping through :func:`article.from_state_dict` therefore zeroes bias_hh's other blocks.
    """
    grads = {name: _grad(param) for name, param in layer.named_parameters()}
    d = layer.hidden_size
    bias_hh = np.zeros_like(grads["bias_hh_l0"])
    for block in article.CELLS[cell].own_hh_bias:
        bias_hh[block * d : (block + 1) * d] = grads["bias_hh_l0"][block * d : (block + 1) * d]
    grads["bias_hh_l0"] = bias_hh
    if fc is not None:
        grads["fc.weight"] = _grad(fc.weight)
        grads["fc.bias"] = _grad(fc.bias)
    return article.from_state_dict(grads, cell)


def tape_gradients(
    cell: str,
    p: dict[str, np.ndarray],
    x: np.ndarray,
    d_out: np.ndarray,
    states: dict[str, np.ndarray] | None = None,
    *,
    variant: str = "standard",
    activation: str | None = None,
    chunk_size: int | None = None,
    device: str = "cpu",
) -> dict[str, np.ndarray]:
    """Gradients of L = Σ d_out ⊙ output by the tape (``loss.backward()``), named as in the article.

    Args:
        cell, p, x, d_out, states, variant, activation: as for :func:`article.bptt`; float64 NumPy arrays.
        chunk_size: truncated BPTT: the recurrent state is ``detach()``-ed every ``chunk_size`` steps.
            ``None`` is full BPTT.
        device: where the tape runs (``cpu``, ``cuda``, ``cuda:N``); the gradients come back as NumPy arrays.

    Returns:
        One gradient per parameter and per initial state, the keys of :func:`article.bptt`.
    """
    model = _model(cell, variant, activation)
    steps, batch, input_size = x.shape
    hidden_size = article.CELLS[cell].sizes(p)[1]
    init = {key: np.zeros((batch, hidden_size)) for key in article.STATE_KEYS[cell]}
    init.update(states or {})
    init_leaves = {key: _leaf(value, device) for key, value in init.items()}
    chunk = chunk_size or steps

    if model.layer is not None:
        layer = model.layer(input_size, hidden_size).to(device)
        sd = article.to_state_dict(p, cell)
        layer.load_state_dict({key: sd[key] for key in RNN_LAYER_KEYS})
        fc: nn.Linear | None = None
        if "fc.weight" in sd:
            fc = nn.Linear(hidden_size, sd["fc.weight"].shape[0], dtype=np.float64, device=device)
            fc.load_state_dict({"weight": sd["fc.weight"], "bias": sd["fc.bias"]})

        def run(x_chunk: Tensor, state: State) -> tuple[Tensor, State]:
            out, final = layer(x_chunk, state if len(state) > 1 else state[0])
            return (out if fc is None else fc(out)), (final if isinstance(final, tuple) else (final,))

        state: State = tuple(leaf.unsqueeze(0) for leaf in init_leaves.values())  # (1, B, d)
    else:
        leaves = {key: _leaf(value, device) for key, value in p.items()}
        steps_of = model.steps
        assert steps_of is not None  # a Model has a layer or steps

        def run(x_chunk: Tensor, state: State) -> tuple[Tensor, State]:
            return steps_of(leaves, x_chunk, state)

        state = tuple(init_leaves.values())

    loss: Tensor | None = None
    for start in range(0, steps, chunk):
        out, state = run(Tensor(x[start : start + chunk], dtype=np.float64, device=device), state)
        chunk_loss = (Tensor(d_out[start : start + chunk], dtype=np.float64, device=device) * out).sum()
        loss = chunk_loss if loss is None else loss + chunk_loss
        state = tuple(tensor.detach() for tensor in state)  # truncated BPTT: no gradient across the cut
    assert loss is not None  # (steps >= 1)
    loss.backward()

    if model.layer is not None:
        grads = _article_grads_of_layer(layer, fc, cell)
    else:
        grads = {key: _grad(leaf) for key, leaf in leaves.items()}
    for key, leaf in init_leaves.items():
        grads[key] = _grad(leaf)
    return grads


def tape_atol(hand: dict[str, np.ndarray]) -> float:
    """The absolute floor of the tape-vs-hand comparison: 1e-13 × the largest entry of any gradient."""
    return TAPE_ATOL_FACTOR * max(float(np.abs(g).max()) for g in hand.values())


# ------------------------------------------------------------------------------------------------
# the table


def make_problem(cell: str, steps: int, batch: int, seed: int) -> dict[str, Any]:
    """A fixed small float64 problem: n=3 inputs, d=4 units, k=2 outputs, random initial states."""
    rng = np.random.default_rng(seed)
    n, d, k = 3, 4, 2
    p = article.init_params(cell, n, d, k, seed=seed)
    out_size = k if "V" in p else d  # the RNN's output O_t has k entries, the others' h_t has d
    return {
        "p": p,
        "x": rng.normal(size=(steps, batch, n)),
        "d_out": rng.normal(size=(steps, batch, out_size)),
        "states": {key: rng.normal(size=(batch, d)) for key in article.STATE_KEYS[cell]},
    }


def _rows(
    model: str, check: str, results: dict[str, article.GradCheckResult]
) -> list[tuple[str, str, str, float, float, bool]]:
    return [(model, check, r.name, r.max_abs_error, r.max_rel_error, r.passed) for r in results.values()]


def run_checks(steps: int, batch: int, seed: int, chunk_size: int,
               device: str = "cpu") -> list[tuple[str, str, str, float, float, bool]]:
    """Every row of the table: (model, check, parameter, max abs error, max relative error, passed)."""
    rows = []
    for label, cell, opts, *_ in MODELS:
        prob = make_problem(cell, steps, batch, seed)
        args = (cell, prob["p"], prob["x"], prob["d_out"], prob["states"])
        hand = article.bptt(*args, **opts)
        tape = tape_gradients(*args, device=device, **opts)
        results = article.compare_gradients(tape, hand, rtol=TAPE_RTOL, atol=tape_atol(hand))
        rows += _rows(label, "tape vs hand", results)

        hand_cut = article.truncated_bptt(cell, prob["p"], prob["x"], prob["d_out"], chunk_size, prob["states"], **opts)
        tape_cut = tape_gradients(*args, chunk_size=chunk_size, device=device, **opts)
        results = article.compare_gradients(tape_cut, hand_cut, rtol=TAPE_RTOL, atol=tape_atol(hand_cut))
        rows += _rows(label, f"tape vs hand, truncated every {chunk_size}", results)

        fd = article.check_bptt_finite_differences(*args, rtol=FD_RTOL, **opts)
        rows += _rows(label, "hand vs finite differences", fd)
    return rows


def format_table(rows: list[tuple[str, str, str, float, float, bool]]) -> str:
    header = ("model", "check", "parameter", "max abs error", "max rel error", "result")
    cells = [header] + [(m, c, p, f"{a:.2e}", f"{r:.2e}", "pass" if ok else "FAIL") for m, c, p, a, r, ok in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = []
    for index, row in enumerate(cells):
        lines.append("  ".join(text.ljust(width) for text, width in zip(row, widths, strict=True)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Print the table; return 0 when every row passes, 1 otherwise."""
    from tinygrad_rnn.cli import example_parser, positive_int, setup

    parser = example_parser(__doc__, out=None, prog=prog, out_help="also write the table to OUT/article_check.txt",
                            seed_help="seed of parameters, inputs and states")
    for action in parser._actions:  # the hand-derived side is always NumPy
        if action.dest == "device":
            action.help = "where the tape runs: cpu, cuda or cuda:N (the hand-derived side is NumPy)"
    parser.add_argument("--steps", type=positive_int, default=12, help="sequence length T")
    parser.add_argument("--batch-size", type=positive_int, default=3, help="batch size B")
    parser.add_argument("--chunk", type=positive_int, default=5, help="truncated-BPTT chunk length")
    args = parser.parse_args(argv)
    device = setup(parser, args, need_out=args.out is not None)

    rows = run_checks(args.steps, args.batch_size, args.seed, args.chunk, device)
    table = format_table(rows)
    failures = sum(1 for row in rows if not row[-1])
    worst_tape = max(row[4] for row in rows if row[1].startswith("tape"))
    worst_fd = max(row[4] for row in rows if row[1].startswith("hand"))
    summary = (
        f"\n{len(rows)} rows, {failures} failed. Worst relative error: tape vs hand {worst_tape:.1e} "
        f"(limit {TAPE_RTOL:.0e}), hand vs finite differences {worst_fd:.1e} (limit {FD_RTOL:.0e})."
    )
    print(table + summary)
    if args.out is not None:
        (Path(args.out) / "article_check.txt").write_text(table + summary + "\n", encoding="utf-8")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
