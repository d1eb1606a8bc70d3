"""Regenerate the tape pictures of the documentation (docs/img/*.svg) with tinygrad_rnn.viz.

    pip install -e ".[viz]"  &&  apt-get install graphviz   # the Python package and the dot program
    python docs/make_figures.py            # writes docs/img/*.svg and docs/img/*.dot

Each picture is drawn from a real run of the package: the same program gives the same DOT text (node ids
follow the order in which ops were recorded), so a changed picture means a changed tape. The figures of
the examples (vanishing gradients, sunspots) come from the examples themselves, see docs/tour/*.md.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # this checkout's tinygrad_rnn, even without an install

import tinygrad_rnn as tg
from tinygrad_rnn import nn
from tinygrad_rnn.viz import render, to_dot


def article_rnn(steps: int) -> tuple[tg.Tensor, dict[str, tg.Tensor]]:
    """The article's RNN, S_t = U I_t + W S_{t-1} + b, unrolled over ``steps`` steps (n = 3, d = 4)."""
    rng = np.random.default_rng(0)
    U = tg.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    W = tg.tensor(rng.standard_normal((4, 4)), requires_grad=True)
    b = tg.tensor(np.zeros(4), requires_grad=True)
    S = tg.tensor(np.zeros(4))  # S_0
    names = {"U": U, "W": W, "b": b, "S_0": S}
    for t in range(1, steps + 1):
        I_t = tg.tensor(rng.standard_normal(3))
        names[f"I_{t}"] = I_t
        S = U @ I_t + W @ S + b
    return S, names


def figures() -> dict[str, str]:
    """name -> DOT text of every figure."""
    out = {}
    S3, names = article_rnn(3)
    out["rnn_unrolled"] = to_dot(S3, names=names, collapse="steps", rankdir="LR")
    S12, names = article_rnn(12)
    out["rnn_rolled"] = to_dot(S12, names=names, collapse=True)

    tg.manual_seed(0)
    lstm = nn.LSTM(input_size=3, hidden_size=4)
    output, _ = lstm(tg.randn(5, 2, 3))  # T = 5 steps, batch 2
    out["lstm_step"] = to_dot(output.sum(), module=lstm, collapse=True)

    gru = nn.GRU(input_size=3, hidden_size=4)
    output, _ = gru(tg.randn(5, 2, 3))
    out["gru_step"] = to_dot(output.sum(), module=gru, collapse=True)

    a = tg.tensor([[1.0, 2.0]], requires_grad=True)
    w = tg.tensor([[0.5], [0.25]], requires_grad=True)
    y = (a @ w).tanh()
    y.retain_grad()
    loss = (y * y).sum()
    loss.backward(retain_graph=True)
    out["tape_grads"] = to_dot(loss, names={"a": a, "w": w}, show_grads=True, rankdir="LR")

    try:  # the captured replay program, when tinygrad_rnn.capture exists
        from tinygrad_rnn import capture  # noqa: F401
    except ImportError:
        pass
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(HERE, "img"), help="folder for the .svg and .dot files")
    parser.add_argument("--format", default="svg", help="svg (default) or png")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name, dot in figures().items():
        with open(os.path.join(args.out, f"{name}.dot"), "w", encoding="utf-8") as f:
            f.write(dot)
        path = render(dot, os.path.join(args.out, f"{name}.{args.format}"), format=args.format)
        print(path)


if __name__ == "__main__":
    main()
