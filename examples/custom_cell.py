"""Your own recurrent cell, outside the package: an IndRNN in a few lines, with all of ``nn.LSTM``'s machinery.

The independently recurrent neural network (IndRNN) of Li, Li, Cook, Zhu & Gao (2018), "Independently
Recurrent Neural Network (IndRNN): Building A Longer and Deeper RNN", CVPR 2018, replaces the recurrent
matrix of Elman's RNN by an element-wise weight u of shape (H,), so each unit only sees its own past::

    h_t = relu(W x_t + u ⊙ h_{t-1} + b)

A cell is a subclass of ``nn.RecurrentCell`` that names its parameters (:meth:`IndRNNCell.parameter_shapes`)
and writes one step from primitive ops (:meth:`IndRNNCell.step`); the input projection ``W x_t + b`` of all
time steps is done once per sequence by the base class. ``class IndRNN(nn.RNNBase): cell = IndRNNCell()``
then gets everything ``nn.LSTM`` has: stacked layers, ``bidirectional``, ``lengths`` and packed sequences,
``batch_first``, unbatched input, initial states, dropout between layers, PyTorch-style parameter names
(``weight_ih_l0``, ``weight_hh_l0_reverse``...), state dicts, and BPTT by ``loss.backward()``.

This script proves it twice:

1. a float64 finite-difference gradient check of a stacked, bidirectional IndRNN with variable lengths
   (every parameter, the input and the initial state);
2. training on a real task: forecasting next year's sunspot number from the previous 16 years
   (``examples/data/sunspots.csv``, the same split as ``examples/sunspots.py``), scored against persistence.

    python examples/custom_cell.py                  # about 10 s on one CPU core
    python examples/custom_cell.py --epochs 5       # a quick look (writes runs/custom_cell/custom_cell.json)
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time

import numpy as np

import tinygrad_rnn as tg
from tinygrad_rnn import functional as F
from tinygrad_rnn import nn, optim
from tinygrad_rnn.cli import example_parser, positive_float, positive_int, setup

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "sunspots.csv")


# ----------------------------------------------------------------------------------------------- the cell


class IndRNNCell(nn.RecurrentCell):
    """IndRNN (Li et al. 2018): ``h' = relu(W_ih x + b_ih + weight_hh ⊙ h)``, weight_hh of shape (H,)."""

    def parameter_shapes(self, input_size: int, hidden_size: int, bias: bool) -> dict[str, tuple[int, ...]]:
        shapes = {"weight_ih": (hidden_size, input_size), "weight_hh": (hidden_size,)}
        if bias:
            shapes["bias_ih"] = (hidden_size,)
        return shapes

    def step(self, x_t: tg.Tensor, state: tuple[tg.Tensor, ...], p: dict[str, tg.Tensor]) -> tuple[tg.Tensor, ...]:
        # x_t is this step's W_ih x_t + b_ih, computed for all steps at once by RecurrentCell.prepare
        return (F.relu(x_t + p["weight_hh"] * state[0]),)


class IndRNN(nn.RNNBase):
    """A multi-layer IndRNN over sequences; arguments and call as ``nn.RNN`` (without ``nonlinearity``)."""

    cell = IndRNNCell()


# ----------------------------------------------------------------------------------------------- 1. gradcheck


def gradcheck_indrnn(seed: int = 0) -> bool:
    """Float64 central differences against the tape: 2 layers, bidirectional, lengths (5, 2, 4)."""
    tg.manual_seed(seed)
    rng = np.random.default_rng(seed)
    layer = IndRNN(3, 4, num_layers=2, bidirectional=True, dtype=np.float64)
    x = tg.Tensor(rng.standard_normal((5, 3, 3)), requires_grad=True)
    h0 = tg.Tensor(rng.standard_normal((4, 3, 4)), requires_grad=True)
    lengths = [5, 2, 4]

    def run(x: tg.Tensor, h0: tg.Tensor, *params: tg.Tensor) -> tuple[tg.Tensor, tg.Tensor]:
        return layer(x, h0, lengths=lengths)

    return tg.gradcheck(run, [x, h0, *layer.parameters()])


# ----------------------------------------------------------------------------------------------- 2. training


def load_sunspots(path: str = DATA) -> tuple[np.ndarray, np.ndarray]:
    """Years and yearly sunspot numbers from the CSV shipped in examples/data (header "YEAR","SUNACTIVITY")."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = [row for row in csv.reader(f) if row and not row[0].startswith("#")][1:]
    return np.array([int(float(r[0])) for r in rows]), np.array([float(r[1]) for r in rows])


class Forecaster(nn.Module):
    """IndRNN(1, H, batch_first) -> Linear(H, 1) on the last step: (B, T) windows -> (B,) next values."""

    def __init__(self, hidden_size: int, num_layers: int, device: str = "cpu"):
        super().__init__()
        self.rnn = IndRNN(1, hidden_size, num_layers=num_layers, batch_first=True, device=device)
        self.head = nn.Linear(hidden_size, 1, device=device)
        # Li et al. keep |u| small enough that u^T neither explodes nor vanishes; on 16 steps U(0, 1) does that
        rng = np.random.default_rng(0)
        self.rnn.load_state_dict({name: rng.uniform(0, 1, size=p.shape) for name, p in self.rnn.named_parameters()
                                  if name.startswith("weight_hh")}, strict=False)

    def forward(self, x: tg.Tensor) -> tg.Tensor:
        out, _ = self.rnn(x.unsqueeze(-1))
        return self.head(out[:, -1]).reshape(-1)


def train(epochs: int, hidden_size: int, num_layers: int, window: int, lr: float, seed: int,
          device: str = "cpu") -> dict[str, float]:
    """Train on 1700-1939, score one-year-ahead forecasts on 1940-2008; returns the test RMSEs (sunspots)."""
    tg.manual_seed(seed)
    rng = np.random.default_rng(seed)
    years, spots = load_sunspots()
    split = int(np.searchsorted(years, 1940))
    mean, std = spots[:split].mean(), spots[:split].std()
    z = (spots - mean) / std
    x_train = np.stack([z[t - window : t] for t in range(window, split)]).astype(np.float32)
    y_train = z[window:split].astype(np.float32)
    x_test = np.stack([z[t - window : t] for t in range(split, len(z))]).astype(np.float32)

    model = Forecaster(hidden_size, num_layers, device)
    opt = optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        order = rng.permutation(len(y_train))
        for start in range(0, len(order), 32):
            idx = order[start : start + 32]
            loss = F.mse_loss(model(tg.Tensor(x_train[idx], device=device)), tg.Tensor(y_train[idx], device=device))
            opt.zero_grad()
            loss.backward()
            opt.step()
    with tg.no_grad():
        forecast = model.eval()(tg.Tensor(x_test, device=device)).numpy().astype(np.float64) * std + mean
    truth = spots[split:]
    return {"IndRNN (this model)": float(np.sqrt(np.mean((forecast - truth) ** 2))),
            "persistence (next = this year)": float(np.sqrt(np.mean((spots[split - 1 : -1] - truth) ** 2)))}


def main(argv: list[str] | None = None) -> int:
    parser = example_parser(__doc__, out="runs/custom_cell")
    parser.add_argument("--epochs", type=positive_int, default=150, help="passes over the training windows")
    parser.add_argument("--hidden-size", type=positive_int, default=32, help="IndRNN units")
    parser.add_argument("--num-layers", type=positive_int, default=1, help="stacked IndRNN layers")
    parser.add_argument("--window", type=positive_int, default=16, help="years read before each forecast")
    parser.add_argument("--lr", type=positive_float, default=3e-3, help="Adam learning rate")
    args = parser.parse_args(argv)
    device = setup(parser, args)

    ok = gradcheck_indrnn(args.seed)
    print("1. gradcheck, float64, IndRNN(3, 4, num_layers=2, bidirectional=True) with lengths (5, 2, 4):",
          "pass" if ok else "FAIL")
    started = time.perf_counter()
    scores = train(args.epochs, args.hidden_size, args.num_layers, args.window, args.lr, args.seed, device)
    print(f"2. sunspots, one year ahead, 1940-2008, after {args.epochs} epochs on {device} "
          f"({time.perf_counter() - started:.1f} s): test RMSE in sunspots")
    for name, value in scores.items():
        print(f"   {name:<32s} {value:6.2f}")
    with open(os.path.join(args.out, "custom_cell.json"), "w", encoding="utf-8") as f:
        json.dump({"gradcheck": ok, "test_rmse": scores, "args": vars(args)}, f, indent=1)
    print(f"artefacts: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
