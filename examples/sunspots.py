"""Forecast next year's sunspot number with a small LSTM (or GRU), and compare it with naive baselines.

The series is the yearly mean sunspot number, 1700–2008 (public domain; shipped as
``examples/data/sunspots.csv``, see ``examples/data/README.md``). It is split **by time**: the model trains
on the years up to ``--test-from`` and is scored on the years from there on, which it never saw. The series is
normalised with the training years' mean and standard deviation only.

Each training example is a window of ``--window`` consecutive years; the model reads it with
``nn.LSTM`` and ``nn.Linear`` maps the last hidden state to the next year's value (a many-to-one regression
with ``F.mse_loss``; backpropagation through time over the window). On the test years it forecasts one year
ahead from the true previous ``--window`` years. It prints the test RMSE (in sunspots) next to three
baselines:

* persistence: next year = this year;
* the ~11-year cycle: next year = the year 11 years before it (the Schwabe cycle; its length wanders
  between about 9 and 14 years, so this baseline is weak);
* a linear autoregression AR(p) fitted by least squares on the same training windows: a strong classical
  baseline (AR(9) is a textbook model of this series). The small network should land near it, far below
  persistence; with only ~220 training windows it overfits if trained much longer.

It writes ``sunspots.png`` (the test years: truth, the network's forecast, persistence and AR) and
``forecast.csv`` under ``--out``.

    python examples/sunspots.py                        # LSTM, CPU, about 15 s on 2 cores
    python examples/sunspots.py --cell gru --seed 1 --device cuda
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time

import numpy as np

import tinygrad_rnn as tg
from tinygrad_rnn import functional as F
from tinygrad_rnn import nn, optim
from tinygrad_rnn.cli import (
    RunCheckpoint,
    StopRequests,
    add_checkpoint_options,
    example_parser,
    non_negative_int,
    positive_float,
    positive_int,
    setup,
    usage_error,
)

try:
    from tqdm import tqdm
except ImportError:  # the progress bar is optional: pip install tinygrad_rnn[examples]
    tqdm = None

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "sunspots.csv")
CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}


# ----------------------------------------------------------------------------------------------- data


def load_sunspots(path: str = DATA) -> tuple[np.ndarray, np.ndarray]:
    """Years (int) and yearly sunspot numbers (float64) from a CSV of ``year,value`` rows after one header row.

    Raises:
        ValueError: a row that is not two finite numbers, years not consecutive, or fewer than 30 years.
    """
    with open(path, newline="", encoding="utf-8") as f:
        rows = [row for row in csv.reader(f) if row and not row[0].startswith("#")]
    if rows and _is_number(rows[0][0]):
        raise ValueError(f"{path}: the first row must be a header such as YEAR,SUNACTIVITY, got {rows[0]}")
    years, values = [], []
    for line, row in enumerate(rows[1:], 2):
        if len(row) < 2 or not _is_number(row[0]) or not _is_number(row[1]) or not np.isfinite(float(row[1])):
            raise ValueError(f"{path}: row {line} is not 'year,value' with a finite value: {row[:3]}")
        years.append(int(float(row[0])))
        values.append(float(row[1]))
    if len(years) < 30 or np.any(np.diff(years) != 1):
        raise ValueError(f"{path}: expected at least 30 consecutive years, got {len(years)} rows")
    return np.array(years), np.array(values)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def windows(series: np.ndarray, window: int, targets: range) -> tuple[np.ndarray, np.ndarray]:
    """Inputs ``series[t - window : t]`` (N, window) and targets ``series[t]`` (N,) for each t in targets."""
    x = np.stack([series[t - window : t] for t in targets])
    return x, series[list(targets)]


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def fit_ar(x: np.ndarray, y: np.ndarray, order: int) -> np.ndarray:
    """Least-squares AR(order) coefficients (intercept last) from windows x (N, window) and targets y."""
    design = np.hstack([x[:, -order:], np.ones((len(x), 1))])
    return np.linalg.lstsq(design, y, rcond=None)[0]


def predict_ar(coef: np.ndarray, x: np.ndarray) -> np.ndarray:
    order = len(coef) - 1
    return x[:, -order:] @ coef[:-1] + coef[-1]


# ----------------------------------------------------------------------------------------------- model


class Forecaster(nn.Module):
    """``{LSTM, GRU}(1, H, num_layers, batch_first) -> Linear(H, 1)`` on the last step: (B, T) -> (B,)."""

    def __init__(self, hidden_size: int, num_layers: int, cell: str, device: str):
        super().__init__()
        self.rnn = CELLS[cell](1, hidden_size, num_layers=num_layers, batch_first=True, device=device)
        self.head = nn.Linear(hidden_size, 1, device=device)

    def forward(self, x: tg.Tensor) -> tg.Tensor:
        out, _ = self.rnn(x.unsqueeze(-1))  # (B, T, H)
        return self.head(out[:, -1]).reshape(-1)


def predict(model: Forecaster, x: np.ndarray, device: str) -> np.ndarray:
    with tg.no_grad():
        return model(tg.Tensor(x.astype(np.float32), device=device)).numpy().astype(np.float64)


# ----------------------------------------------------------------------------------------------- main


SETTINGS = ("cell", "hidden_size", "num_layers", "window", "test_from", "batch_size", "lr", "clip", "seed")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = example_parser(__doc__, out="runs/sunspots")
    p.add_argument("--cell", choices=sorted(CELLS), default="lstm", help="recurrent layer")
    p.add_argument("--data", default=DATA, help="a CSV of year,value rows with a header")
    p.add_argument("--test-from", type=int, default=1940, help="first year of the test period")
    p.add_argument("--window", type=positive_int, default=16, help="years the model reads before each forecast")
    p.add_argument("--ar-order", type=positive_int, default=9, help="order p of the AR(p) baseline")
    p.add_argument("--hidden-size", type=positive_int, default=32, help="recurrent hidden size")
    p.add_argument("--num-layers", type=positive_int, default=1, help="stacked recurrent layers")
    p.add_argument("--epochs", type=non_negative_int, default=100, help="passes over the training windows")
    p.add_argument("--batch-size", type=positive_int, default=32, help="windows per training step")
    p.add_argument("--lr", type=positive_float, default=3e-3, help="Adam learning rate")
    p.add_argument("--clip", type=positive_float, default=1.0, help="max global gradient norm")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (log every 50 epochs instead)")
    p.add_argument("--eager", action="store_true",
                   help="run each training step on the tape instead of replaying a captured one (tinygrad_rnn.capture)")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG (no matplotlib needed)")
    add_checkpoint_options(p, every=25, unit="epochs")
    args = p.parse_args(argv)
    args.device = setup(p, args)
    if not os.path.isfile(args.data):
        p.error(f"--data {args.data}: no such file")
    args.checkpoint = RunCheckpoint(p, args, argv, "checkpoint.npz", SETTINGS)
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    saved = args.checkpoint.load()  # on --resume, also the run's settings
    rng = np.random.default_rng(args.seed)
    device = args.device

    try:
        years, spots = load_sunspots(args.data)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        usage_error("sunspots.py", f"--data: {exc}")
    split = int(np.searchsorted(years, args.test_from))
    if not args.window <= split - 10 or split >= len(years):
        usage_error("sunspots.py", f"--test-from {args.test_from} and --window {args.window} leave too little data")
    mean, std = spots[:split].mean(), spots[:split].std()  # the training years' statistics only
    z = (spots - mean) / std
    x_train, y_train = windows(z, args.window, range(args.window, split))
    x_test, y_test = windows(z, args.window, range(split, len(z)))
    print(f"data: yearly sunspot numbers {years[0]}-{years[-1]} ({len(years)} years); "
          f"train {years[0]}-{years[split - 1]} ({len(y_train)} windows of {args.window} years), "
          f"test {years[split]}-{years[-1]} ({len(y_test)} years)")

    model = Forecaster(args.hidden_size, args.num_layers, args.cell, device)
    opt = optim.Adam(model.parameters(), lr=args.lr)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {args.cell.upper()} hidden {args.hidden_size} x {args.num_layers} layer(s) -> Linear, "
          f"{n_params:,} parameters, on {device}")

    epoch0 = 0
    if saved is not None:
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optim"])
        rng.bit_generator.state = saved["rng"]
        epoch0 = saved["epoch"]
        print(f"resumed from {args.checkpoint.path} after epoch {epoch0}")

    def write_checkpoint(epochs_done: int) -> None:
        args.checkpoint.save({"model": model.state_dict(), "optim": opt.state_dict(), "epoch": epochs_done,
                              "rng": rng.bit_generator.state})

    def loss_backward(xb: tg.Tensor, yb: tg.Tensor) -> tg.Tensor:
        """Forward, loss and backward of one batch: recorded at its first call, then replayed (tg.capture)."""
        loss = F.mse_loss(model(xb), yb)
        loss.backward()
        return loss

    train_step = loss_backward if args.eager else tg.capture(loss_backward)
    bar = None if (tqdm is None or args.no_progress) else tqdm(total=args.epochs, unit="epoch", dynamic_ncols=True)
    started = time.perf_counter()
    epoch = epoch0
    with StopRequests() as stop:  # Ctrl-C/SIGTERM: finish the epoch, write the checkpoint, stop
        while epoch < epoch0 + args.epochs and not stop.requested:
            order = rng.permutation(len(y_train))
            total = 0.0
            for start in range(0, len(order), args.batch_size):
                idx = order[start : start + args.batch_size]
                xb = tg.Tensor(x_train[idx].astype(np.float32), device=device)
                yb = tg.Tensor(y_train[idx].astype(np.float32), device=device)
                opt.zero_grad()
                loss = train_step(xb, yb)
                optim.clip_grad_norm_(model.parameters(), args.clip)
                opt.step()
                total += loss.item() * len(idx)
            train_rmse = np.sqrt(total / len(order)) * std
            if bar is not None:
                bar.set_postfix(epoch_rmse=f"{train_rmse:.1f}")  # averaged while the weights still moved
                bar.update(1)
            elif (epoch + 1) % 50 == 0:
                print(f"epoch {epoch + 1}: mean train RMSE during the epoch {train_rmse:.1f} sunspots", flush=True)
            epoch += 1
            if args.save_every and (epoch - epoch0) % args.save_every == 0:
                write_checkpoint(epoch)
    if bar is not None:
        bar.close()
    write_checkpoint(epoch)
    if epoch < epoch0 + args.epochs:
        print(f"\nstopped after epoch {epoch} (Ctrl-C or SIGTERM); checkpoint written to {args.checkpoint.path}.\n"
              f"Continue with the same options plus: --resume --epochs {epoch0 + args.epochs - epoch}", file=sys.stderr)
        return 130
    elapsed = time.perf_counter() - started

    # Everything below in sunspots (undo the normalisation).
    truth = spots[split:]
    net = predict(model.eval(), x_test, device) * std + mean
    persistence = spots[split - 1 : -1]
    cycle = spots[split - 11 : len(spots) - 11]
    coef = fit_ar(x_train, y_train, args.ar_order)
    ar = predict_ar(coef, x_test) * std + mean
    scores = {
        f"{args.cell.upper()} (this model)": rmse(net, truth),
        "persistence (next = this year)": rmse(persistence, truth),
        "11-year cycle (next = 11 years before)": rmse(cycle, truth),
        f"AR({args.ar_order}) least squares": rmse(ar, truth),
    }
    train_rmse = rmse(predict(model, x_train, device) * std + mean, spots[args.window : split])
    print(f"\ntrained {args.epochs} epochs in {elapsed:.1f} s (train RMSE of the final model {train_rmse:.1f})")
    print(f"test RMSE, one year ahead, {years[split]}-{years[-1]} (sunspots; the test years' std is "
          f"{truth.std():.1f}):")
    for name, value in scores.items():
        print(f"  {name:<42s} {value:7.2f}")
    gain = 1 - scores[f"{args.cell.upper()} (this model)"] / scores["persistence (next = this year)"]
    print(f"the network's error is {abs(gain):.0%} {'below' if gain > 0 else 'ABOVE'} persistence's")

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "forecast.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["year", "truth", args.cell, "persistence", "cycle11", f"ar{args.ar_order}"])
        for row in zip(years[split:], truth, net, persistence, cycle, ar, strict=False):
            w.writerow([row[0]] + [f"{v:.2f}" for v in row[1:]])
    if not args.no_plot:
        plot(os.path.join(args.out, "sunspots.png"), years, spots, split, net, persistence, ar, args, scores)
    print(f"artefacts: {args.out}")
    return 0


def plot(path, years, spots, split, net, persistence, ar, args, scores) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), gridspec_kw={"height_ratios": [1, 2]})
    top.plot(years, spots, color="0.3", lw=1)
    top.axvspan(years[split], years[-1], color="tab:orange", alpha=0.15, label="test years")
    top.set_ylabel("sunspots")
    top.set_title("Yearly sunspot numbers (training years left of the shaded test period)")
    top.legend(loc="upper left")
    test_years = years[split:]
    name = args.cell.upper()
    bottom.plot(test_years, spots[split:], "k.-", lw=1.5, label="truth")
    bottom.plot(test_years, net, "-", color="tab:red", lw=2,
                label=f"{name}, one year ahead (RMSE {scores[f'{name} (this model)']:.1f})")
    bottom.plot(test_years, ar, "--", color="tab:blue", lw=1,
                label=f"AR({args.ar_order}) (RMSE {scores[f'AR({args.ar_order}) least squares']:.1f})")
    bottom.plot(test_years, persistence, ":", color="tab:green", lw=1,
                label=f"persistence (RMSE {scores['persistence (next = this year)']:.1f})")
    bottom.set_xlabel("year")
    bottom.set_ylabel("sunspots")
    bottom.legend(loc="upper left", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
