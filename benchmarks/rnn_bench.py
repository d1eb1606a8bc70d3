#!/usr/bin/env python
"""Speed and memory of tinygrad_rnn's RNN/LSTM/GRU layers, against hand-written NumPy and PyTorch, in one run.

For each cell (RNN with tanh, LSTM, GRU) and size, three implementations of the *same model* (one layer,
float32, the same weights) are timed:

* ``tape``  — ``tinygrad_rnn.nn.RNN/LSTM/GRU``: the cells are compositions of primitive ops and BPTT is the
  tape's ``loss.backward()``;
* ``numpy`` — a hand-written NumPy forward and hand-derived BPTT of the same equations (below, in this file):
  the same array operations with no framework around them, the zero-overhead limit for a NumPy tape. Its
  gradients are checked against the tape's (float64, ≤ 1e-10) before anything is timed;
* ``torch`` — ``torch.nn.RNN/LSTM/GRU`` on the CPU, when PyTorch is installed (its LSTM is one fused C++ op
  per step);
* ``captured`` — the tape's step through ``tinygrad_rnn.capture`` (recorded once, replayed as a flat program of
  NumPy calls; checked bitwise equal to the tape's gradients first). Its peak memory includes the buffers the
  program holds between calls.

The *main job* is one training step of ``examples/char_lm.py``'s default model (Embedding -> cell(32, 128) ->
Linear, B32·T64, cross-entropy, backward, ``clip_grad_norm_(1.0)``, Adam): eager, captured, captured with the
opt-in ``fast_sigmoid``, and the same model in PyTorch with the same weights (``--only-main-job``,
``--skip-main-job``).

A *training step* is: forward over the whole sequence, the scalar loss ``sum(output ⊙ R)`` for a fixed random
R, and backward to every parameter. *Forward* is the forward pass alone under ``no_grad``. Times are medians
over repeated runs after warm-up; the implementations take turns inside every repetition, so a noisy
neighbour slows them alike. Peak memory is ``tracemalloc``'s peak during one training step (NumPy reports its
buffers to it; PyTorch does not, so it has no memory column).

Also measured: microseconds per recorded op for a tiny elementwise op, and how time and peak memory grow from
T = 1,000 to T = 10,000 steps.

Usage (the table in benchmarks/README.md came from the first line)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/rnn_bench.py --threads 1 --save
    python benchmarks/rnn_bench.py --size medium --cells lstm --repeats 5
    python benchmarks/rnn_bench.py --help

Threads are fixed (``--threads``, default 1) for NumPy's BLAS and for PyTorch, and reported.
"""

from __future__ import annotations

import argparse
import os
import sys

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="all", choices=["small", "medium", "long", "all"],
                        help="small B8·T32·I32·H64, medium B32·T64·I128·H256, long B4·T1000·I16·H32 (default all)")
    parser.add_argument("--cells", default="rnn,lstm,gru", help="comma-separated subset of rnn,lstm,gru")
    parser.add_argument("--threads", type=int, default=1, help="BLAS / OpenMP / PyTorch threads (default 1)")
    parser.add_argument("--clock", default="auto", choices=["auto", "cpu", "wall"],
                        help="cpu: the process's CPU time, which other processes on a shared machine do not inflate "
                             "(equal to wall time on a quiet machine when everything runs on one thread); "
                             "wall: elapsed time. auto (default): cpu with --threads 1, wall otherwise")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per measurement (default by size)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed runs first (default by size)")
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch even when it is installed")
    parser.add_argument("--skip-scaling", action="store_true", help="skip the T=1,000 vs T=10,000 check")
    parser.add_argument("--skip-main-job", action="store_true",
                        help="skip the main job (char_lm's default model: one step with Adam and clipping)")
    parser.add_argument("--only-main-job", action="store_true", help="run only the main job")
    parser.add_argument("--skip-memory", action="store_true", help="skip the tracemalloc peak-memory runs")
    parser.add_argument("--save", nargs="?", const=RESULTS, default=None, metavar="DIR",
                        help="also write rnn_bench.json and rnn_bench.md to DIR (default benchmarks/results)")
    return parser.parse_args(argv)


ARGS = _parse_args() if __name__ == "__main__" else None
if ARGS is not None:  # must happen before NumPy (and its BLAS) is imported
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = str(ARGS.threads)

import gc
import json
import platform
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tinygrad_rnn as tg
from tinygrad_rnn import nn
from tinygrad_rnn.backend import get_array_module
from tinygrad_rnn.numerics import sigmoid  # the overflow-free σ that ops.Sigmoid uses, on raw arrays

try:
    import torch
except ImportError:  # the torch column is left out
    torch = None

SIZES = {  # name -> (B, T, I, H)
    "small": (8, 32, 32, 64),
    "medium": (32, 64, 128, 256),
    "long": (4, 1000, 16, 32),
}
DEFAULT_RUNS = {"small": (3, 21), "medium": (2, 9), "long": (1, 7)}  # (warm-up, repeats)
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
LAYERS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


# --------------------------------------------------------------------------------------------------
# The hand-written reference: NumPy forward and hand-derived BPTT, PyTorch's parameter layout
# (W_ih (G·H, I), W_hh (G·H, H), b_ih, b_hh (G·H,)), time-major x (T, B, I), zero initial state.
# NumPy or CuPy arrays alike (gpu_bench.py runs the same code on the GPU).
# --------------------------------------------------------------------------------------------------


def hand_forward(cell: str, p: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Inference: the output sequence (T, B, H), nothing kept for backward."""
    xp = get_array_module(x)
    T, B, _ = x.shape
    H = p["W_hh"].shape[1]
    W_hh_t = p["W_hh"].T
    b = p["b_ih"] + p["b_hh"] if cell != "gru" else p["b_ih"]
    xw = (x.reshape(T * B, -1) @ p["W_ih"].T + b).reshape(T, B, -1)  # all steps' input projections at once
    out = xp.empty((T, B, H), dtype=x.dtype)
    h = xp.zeros((B, H), dtype=x.dtype)
    c = xp.zeros((B, H), dtype=x.dtype)
    for t in range(T):
        if cell == "rnn":
            h = xp.tanh(xw[t] + h @ W_hh_t)
        elif cell == "lstm":
            a = xw[t] + h @ W_hh_t
            i_f = sigmoid(a[:, :2 * H])  # i and f are adjacent: one sigmoid for both (as the layer does)
            i, f, g, o = i_f[:, :H], i_f[:, H:], xp.tanh(a[:, 2 * H:3 * H]), sigmoid(a[:, 3 * H:])
            c = f * c + i * g
            h = o * xp.tanh(c)
        else:
            hw = h @ W_hh_t + p["b_hh"]
            rz = sigmoid(xw[t, :, :2 * H] + hw[:, :2 * H])  # r and z: one sigmoid (as the layer does)
            r, z = rz[:, :H], rz[:, H:]
            n = xp.tanh(xw[t, :, 2 * H:] + r * hw[:, 2 * H:])
            h = n + z * (h - n)
        out[t] = h
    return out


def hand_train_step(cell: str, p: dict[str, np.ndarray], x: np.ndarray, R: np.ndarray) -> tuple[Any, dict]:
    """Loss ``sum(h ⊙ R)`` and its gradient for every parameter: forward, then hand-derived BPTT.

    Backward, with ∂h_t the gradient reaching h_t (R_t plus what step t+1 sends back)::

        RNN:   ∂a = ∂h_t ⊙ (1 − h_t²)                                ∂h_{t-1} = ∂a W_hh
        LSTM:  ∂o = ∂h_t ⊙ tanh c_t      ∂c_t += ∂h_t ⊙ o ⊙ (1 − tanh² c_t)
               ∂i = ∂c_t ⊙ g   ∂f = ∂c_t ⊙ c_{t-1}   ∂g = ∂c_t ⊙ i   ∂c_{t-1} = ∂c_t ⊙ f
               ∂a = [∂i·i(1−i), ∂f·f(1−f), ∂g·(1−g²), ∂o·o(1−o)]     ∂h_{t-1} = ∂a W_hh
        GRU:   ∂z = ∂h_t ⊙ (h_{t-1} − n)   ∂n = ∂h_t ⊙ (1 − z)   ∂a_n = ∂n ⊙ (1 − n²)
               ∂r = ∂a_n ⊙ hw_n   ∂hw_n = ∂a_n ⊙ r   (hw = h_{t-1} W_hhᵀ + b_hh)
               ∂x-side = [∂r·r(1−r), ∂z·z(1−z), ∂a_n]   ∂h-side = [∂r·r(1−r), ∂z·z(1−z), ∂hw_n]
               ∂h_{t-1} = ∂h_t ⊙ z + ∂h-side W_hh
        all:   ∂W_ih = Σ_t ∂x-sideᵀ x_t   ∂W_hh = Σ_t ∂h-sideᵀ h_{t-1}   ∂b = Σ_t (their rows summed)

    The weight gradients of all steps are one matmul each, after the time loop. NumPy or CuPy arrays (the loss
    is returned as a 0-d array, so a GPU run does not wait for it).
    """
    xp = get_array_module(x)
    T, B, I = x.shape
    H = p["W_hh"].shape[1]
    G = GATES[cell]
    W_hh, W_hh_t = p["W_hh"], p["W_hh"].T
    b = p["b_ih"] + p["b_hh"] if cell != "gru" else p["b_ih"]
    xw = (x.reshape(T * B, I) @ p["W_ih"].T + b).reshape(T, B, G * H)
    hs = xp.zeros((T + 1, B, H), dtype=x.dtype)  # hs[t + 1] = h_t, hs[0] = h_0 = 0
    if cell == "rnn":
        for t in range(T):
            hs[t + 1] = xp.tanh(xw[t] + hs[t] @ W_hh_t)
    elif cell == "lstm":
        acts = xp.empty((T, B, 4 * H), dtype=x.dtype)  # σ(i), σ(f), tanh(g), σ(o)
        cs = xp.zeros((T + 1, B, H), dtype=x.dtype)
        tanh_c = xp.empty((T, B, H), dtype=x.dtype)
        for t in range(T):
            a = xw[t] + hs[t] @ W_hh_t
            act = acts[t]
            act[:, :2 * H] = sigmoid(a[:, :2 * H])
            act[:, 2 * H:3 * H] = xp.tanh(a[:, 2 * H:3 * H])
            act[:, 3 * H:] = sigmoid(a[:, 3 * H:])
            cs[t + 1] = act[:, H:2 * H] * cs[t] + act[:, :H] * act[:, 2 * H:3 * H]
            tanh_c[t] = xp.tanh(cs[t + 1])
            hs[t + 1] = act[:, 3 * H:] * tanh_c[t]
    else:
        rz_ = xp.empty((T, B, 2 * H), dtype=x.dtype)
        n_, hwn_ = xp.empty((T, B, H), dtype=x.dtype), xp.empty((T, B, H), dtype=x.dtype)
        for t in range(T):
            hw = hs[t] @ W_hh_t + p["b_hh"]
            rz_[t] = sigmoid(xw[t, :, :2 * H] + hw[:, :2 * H])
            r, z = rz_[t, :, :H], rz_[t, :, H:]
            hwn_[t] = hw[:, 2 * H:]
            n_[t] = xp.tanh(xw[t, :, 2 * H:] + r * hwn_[t])
            hs[t + 1] = n_[t] + z * (hs[t] - n_[t])
    loss = (hs[1:] * R).sum(dtype=np.float64)

    dxg = xp.empty((T, B, G * H), dtype=x.dtype)  # gradient of the input-side pre-activations
    dhg = dxg if cell != "gru" else xp.empty((T, B, G * H), dtype=x.dtype)  # ... of the h-side ones
    dh = xp.zeros((B, H), dtype=x.dtype)
    if cell == "rnn":
        for t in reversed(range(T)):
            dh = dh + R[t]
            dxg[t] = dh * (1 - hs[t + 1] * hs[t + 1])
            dh = dxg[t] @ W_hh
    elif cell == "lstm":
        dc = xp.zeros((B, H), dtype=x.dtype)
        for t in reversed(range(T)):
            dh = dh + R[t]
            act, tc = acts[t], tanh_c[t]
            i, f, g, o = act[:, :H], act[:, H:2 * H], act[:, 2 * H:3 * H], act[:, 3 * H:]
            dc = dc + dh * o * (1 - tc * tc)
            da = dxg[t]
            da[:, :H] = dc * g * i * (1 - i)
            da[:, H:2 * H] = dc * cs[t] * f * (1 - f)
            da[:, 2 * H:3 * H] = dc * i * (1 - g * g)
            da[:, 3 * H:] = dh * tc * o * (1 - o)
            dc = dc * f
            dh = da @ W_hh
    else:
        for t in reversed(range(T)):
            dh = dh + R[t]
            r, z, n = rz_[t, :, :H], rz_[t, :, H:], n_[t]
            da_n = dh * (1 - z) * (1 - n * n)
            da_r = da_n * hwn_[t] * r * (1 - r)
            da_z = dh * (hs[t] - n) * z * (1 - z)
            dxg[t, :, :H] = dhg[t, :, :H] = da_r
            dxg[t, :, H:2 * H] = dhg[t, :, H:2 * H] = da_z
            dxg[t, :, 2 * H:] = da_n
            dhg[t, :, 2 * H:] = da_n * r
            dh = dh * z + dhg[t] @ W_hh
    dxg2, dhg2 = dxg.reshape(T * B, G * H), dhg.reshape(T * B, G * H)
    grads = {
        "W_ih": dxg2.T @ x.reshape(T * B, I),
        "W_hh": dhg2.T @ hs[:-1].reshape(T * B, H),
        "b_ih": dxg2.sum(axis=0),
        "b_hh": dhg2.sum(axis=0),
    }
    return loss, grads


def layer_params(layer: Any) -> dict[str, np.ndarray]:
    """The layer's weights under the reference's names (the arrays themselves, not copies)."""
    return {"W_ih": layer.weight_ih_l0.array, "W_hh": layer.weight_hh_l0.array,
            "b_ih": layer.bias_ih_l0.array, "b_hh": layer.bias_hh_l0.array}


# --------------------------------------------------------------------------------------------------
# The three implementations, set up for one (cell, size)
# --------------------------------------------------------------------------------------------------


class Case:
    """One cell at one size: the data, our layer, the reference's parameters, and PyTorch's layer."""

    def __init__(self, cell: str, B: int, T: int, I: int, H: int, dtype: Any = np.float32, use_torch: bool = True):
        self.cell = cell
        rng = np.random.default_rng(0)
        tg.manual_seed(0)
        self.layer = LAYERS[cell](I, H, dtype=dtype)
        self.params = layer_params(self.layer)
        self.x_np = rng.standard_normal((T, B, I)).astype(dtype)
        self.R_np = rng.standard_normal((T, B, H)).astype(dtype)
        self.x, self.R = tg.Tensor(self.x_np), tg.Tensor(self.R_np)
        self.torch_layer = None
        if use_torch and torch is not None:
            kind = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
            tl = kind(I, H).to(torch.float64 if dtype == np.float64 else torch.float32)
            with torch.no_grad():
                for name, value in tl.named_parameters():
                    value.copy_(torch.from_numpy(getattr(self.layer, name).array))
            self.torch_layer = tl
            self.x_t, self.R_t = torch.from_numpy(self.x_np), torch.from_numpy(self.R_np)

    # ---------------------------------------------------------------- ours
    def tape_step(self) -> None:
        for prm in self.layer.parameters():
            prm.grad = None
        out, _ = self.layer(self.x)
        (out * self.R).sum().backward()

    def _loss_backward(self, x: Any, R: Any) -> None:
        out, _ = self.layer(x)
        (out * R).sum().backward()

    def captured_step(self) -> None:
        """The same step through ``tinygrad_rnn.capture``: recorded at the first call, replayed after it."""
        if not hasattr(self, "captured"):
            self.captured = tg.capture(self._loss_backward)
        for prm in self.layer.parameters():
            prm.grad = None
        self.captured(self.x, self.R)

    def fused_step(self) -> None:
        """Captured with the opt-in ``fuse_weight_grads`` (one product per weight gradient; not bitwise)."""
        if not hasattr(self, "fused"):
            self.fused = tg.capture(self._loss_backward, fuse_weight_grads=True)
        for prm in self.layer.parameters():
            prm.grad = None
        self.fused(self.x, self.R)

    def tape_forward(self) -> None:
        with tg.no_grad():
            self.layer(self.x)

    # ---------------------------------------------------------------- the reference
    def numpy_step(self) -> dict:
        return hand_train_step(self.cell, self.params, self.x_np, self.R_np)[1]

    def numpy_forward(self) -> None:
        hand_forward(self.cell, self.params, self.x_np)

    # ---------------------------------------------------------------- PyTorch
    def torch_step(self) -> None:
        self.torch_layer.zero_grad(set_to_none=True)
        out, _ = self.torch_layer(self.x_t)
        (out * self.R_t).sum().backward()

    def torch_forward(self) -> None:
        with torch.no_grad():
            self.torch_layer(self.x_t)

    def tape_grads(self) -> dict[str, np.ndarray]:
        self.tape_step()
        names = {"W_ih": "weight_ih_l0", "W_hh": "weight_hh_l0", "b_ih": "bias_ih_l0", "b_hh": "bias_hh_l0"}
        return {k: getattr(self.layer, v).grad.numpy() for k, v in names.items()}


def _ref_names() -> dict[str, str]:
    return {"W_ih": "weight_ih_l0", "W_hh": "weight_hh_l0", "b_ih": "bias_ih_l0", "b_hh": "bias_hh_l0"}


def _rel_err(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def verify(cells: list[str], sizes: dict[str, tuple[int, int, int, int]], use_torch: bool) -> list[str]:
    """Check the reference against the tape (float64, ≤ 1e-10) and every column at the timed sizes (float32).

    Raises:
        AssertionError: a gradient that disagrees.
    """
    lines = []
    for cell in cells:
        case = Case(cell, 3, 7, 5, 6, dtype=np.float64, use_torch=False)
        hand = hand_train_step(cell, case.params, case.x_np, case.R_np)[1]
        tape = case.tape_grads()
        err = max(_rel_err(hand[k], tape[k]) for k in hand)
        assert err <= 1e-10, f"{cell}: hand-derived BPTT and the tape differ by {err:.2e} in float64"
        out = hand_forward(cell, case.params, case.x_np)
        with tg.no_grad():
            err_f = _rel_err(out, case.layer(case.x)[0].numpy())
        assert err_f <= 1e-12, f"{cell}: hand forward and the layer differ by {err_f:.2e} in float64"
        worst = {"float64 tape vs numpy": err}
        for size, (B, T, I, H) in sizes.items():
            case = Case(cell, B, T, I, H, use_torch=use_torch)
            hand = case.numpy_step()
            tape = case.tape_grads()
            worst[f"{size} f32 tape vs numpy"] = max(_rel_err(tape[k], hand[k]) for k in hand)
            for _ in range(2):  # the recording call, then a replay
                case.captured_step()
            for k, v in _ref_names().items():
                assert np.array_equal(getattr(case.layer, v).grad.numpy(), tape[k]), \
                    f"{cell} {size}: the captured step's gradient of {v} differs from the tape's"
            for _ in range(2):
                case.fused_step()
            worst[f"{size} f32 fused vs tape"] = max(_rel_err(getattr(case.layer, v).grad.numpy(), tape[k])
                                                     for k, v in _ref_names().items())
            if case.torch_layer is not None:
                case.torch_step()
                tl = case.torch_layer
                theirs = {"W_ih": tl.weight_ih_l0, "W_hh": tl.weight_hh_l0,
                          "b_ih": tl.bias_ih_l0, "b_hh": tl.bias_hh_l0}
                worst[f"{size} f32 tape vs torch"] = max(_rel_err(tape[k], theirs[k].grad.numpy()) for k in hand)
            for key, value in worst.items():
                if "f32" in key:
                    assert value <= 1e-3, f"{cell}: {key} relative error {value:.2e}"
        lines.append(f"  {cell:4s} " + ", ".join(f"{k} {v:.1e}" for k, v in worst.items())
                     + "; captured = tape bitwise")
    return lines


# --------------------------------------------------------------------------------------------------
# Timing and memory
# --------------------------------------------------------------------------------------------------


CLOCK: Callable[[], float] = time.process_time  # set from --clock in main()


def time_interleaved(fns: dict[str, Callable[[], Any]], warmup: int, repeats: int) -> dict[str, float]:
    """Median seconds per call of each function (by :data:`CLOCK`); they take turns in every repetition."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            gc.collect()
            start = CLOCK()
            fn()
            samples[name].append(CLOCK() - start)
    return {name: statistics.median(s) for name, s in samples.items()}


def peak_memory(fn: Callable[[], Any]) -> int:
    """Bytes allocated at the peak of one call of ``fn`` above what was allocated before it (tracemalloc)."""
    fn()  # warm caches so they are not counted
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result = fn()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    del result
    return peak


def bench_case(cell: str, size: str, warmup: int, repeats: int, use_torch: bool, memory: bool) -> dict:
    B, T, I, H = SIZES[size]
    case = Case(cell, B, T, I, H, use_torch=use_torch)
    steps = {"tape": case.tape_step, "numpy": case.numpy_step, "captured": case.captured_step,
             "fused": case.fused_step}
    forwards = {"tape": case.tape_forward, "numpy": case.numpy_forward}
    if case.torch_layer is not None:
        steps["torch"] = case.torch_step
        forwards["torch"] = case.torch_forward
    row: dict[str, Any] = {"cell": cell, "size": size, "B": B, "T": T, "I": I, "H": H}
    row["step"] = time_interleaved(steps, warmup, repeats)
    row["forward"] = time_interleaved(forwards, warmup, repeats)
    if memory:
        row["peak"] = {"tape": peak_memory(case.tape_step), "numpy": peak_memory(case.numpy_step),
                       # the replay's own allocations during the step plus the buffers its program holds
                       "captured": peak_memory(case.captured_step) + case.captured.buffer_bytes(),
                       "fused": peak_memory(case.fused_step) + case.fused.buffer_bytes()}
    return row


# --------------------------------------------------------------------------------------------------
# The main job: one training step of examples/char_lm.py's default model, against the same model in PyTorch
# --------------------------------------------------------------------------------------------------

MAIN_JOB = {"E": 32, "H": 128, "B": 32, "T": 64, "lr": 3e-3, "clip": 1.0}  # char_lm.py's defaults


def _char_vocab() -> int:
    """The number of distinct characters of char_lm.py's default text (pydoc_data.topics)."""
    try:
        from pydoc_data.topics import topics
    except ImportError:
        return 96
    return len(set("\n\n".join(topics[k] for k in sorted(topics))))


class MainJob:
    """``Embedding(V, 32) -> cell(32, 128) -> Linear(128, V)``, cross-entropy over a (64, 32) chunk of character ids,
    backward, ``clip_grad_norm_(1.0)`` and an Adam step (lr 3e-3): eager, captured, and PyTorch with the same
    weights."""

    def __init__(self, cell: str, use_torch: bool = True):
        c = MAIN_JOB
        V = self.V = _char_vocab()
        rng = np.random.default_rng(0)
        self.x_np = rng.integers(0, V, (c["T"], c["B"]))
        self.y_np = rng.integers(0, V, (c["T"], c["B"]))
        self.x, self.y = tg.tensor(self.x_np), tg.tensor(self.y_np.reshape(-1))
        self.models = {}
        for kind in ("eager", "captured", "fast"):
            tg.manual_seed(0)
            mods = [nn.Embedding(V, c["E"]), LAYERS[cell](c["E"], c["H"]), nn.Linear(c["H"], V)]
            params = [p for m in mods for p in m.parameters()]
            self.models[kind] = (mods, params, tg.optim.Adam(params, lr=c["lr"]))
        self.step_fn = {"eager": self._make_step("eager"), "captured": tg.capture(self._make_step("captured")),
                        "fast": tg.capture(self._make_step("fast"), fast_sigmoid=True)}
        self.torch = None
        if use_torch and torch is not None:
            kind = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
            tmods = [torch.nn.Embedding(V, c["E"]), kind(c["E"], c["H"]), torch.nn.Linear(c["H"], V)]
            with torch.no_grad():
                for ours, theirs in zip(self.models["eager"][0], tmods, strict=False):
                    for name, value in theirs.named_parameters():
                        value.copy_(torch.from_numpy(getattr(ours, name).numpy()))
            tparams = [p for m in tmods for p in m.parameters()]
            self.torch = (tmods, tparams, torch.optim.Adam(tparams, lr=c["lr"]))
            self.x_t, self.y_t = torch.from_numpy(self.x_np), torch.from_numpy(self.y_np.reshape(-1))

    def _make_step(self, kind: str) -> Callable:
        (embed, rnn, head), _, _ = self.models[kind]
        V = self.V

        def loss_backward(x: Any, y: Any) -> Any:
            out, _ = rnn(embed(x))
            loss = tg.functional.cross_entropy(head(out).reshape(-1, V), y)
            loss.backward()
            return loss
        return loss_backward

    def step(self, kind: str) -> Any:
        _, params, opt = self.models[kind]
        opt.zero_grad()
        loss = self.step_fn[kind](self.x, self.y)
        tg.optim.clip_grad_norm_(params, MAIN_JOB["clip"])
        opt.step()
        return loss

    def eager_step(self) -> Any:
        return self.step("eager")

    def captured_step(self) -> Any:
        return self.step("captured")

    def fast_step(self) -> Any:
        """Captured with the opt-in ``fast_sigmoid`` (not bitwise: see tinygrad_rnn.capture)."""
        return self.step("fast")

    def torch_step(self) -> Any:
        (embed, rnn, head), params, opt = self.torch
        opt.zero_grad(set_to_none=True)
        out, _ = rnn(embed(self.x_t))
        loss = torch.nn.functional.cross_entropy(head(out).reshape(-1, self.V), self.y_t)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, MAIN_JOB["clip"])
        opt.step()
        return loss


def main_job(cells: list[str], warmup: int, repeats: int, use_torch: bool) -> list[dict]:
    """Time one training step of char_lm's default model per cell; check the three agree first."""
    rows = []
    for cell in cells:
        job = MainJob(cell, use_torch)
        losses = {"eager": [], "captured": [], "fast": [], "torch": []}
        for _ in range(3):  # equal steps: captured == eager bitwise (same Adam), fast sigmoid and torch close
            losses["eager"].append(job.eager_step().item())
            losses["captured"].append(job.captured_step().item())
            losses["fast"].append(job.fast_step().item())
            if job.torch is not None:
                losses["torch"].append(job.torch_step().item())
        assert losses["eager"] == losses["captured"], (
            f"{cell}: captured {losses['captured']} != eager {losses['eager']}")
        for other in ("fast", "torch"):
            if losses[other]:
                err = max(abs(a - b) / abs(b) for a, b in zip(losses["eager"], losses[other], strict=False))
                assert err < 1e-4, f"{cell}: main job loss of {other} differs from eager's by {err:.1e}"
        fns = {"eager": job.eager_step, "captured": job.captured_step, "fast": job.fast_step}
        if job.torch is not None:
            fns["torch"] = job.torch_step
        row = {"cell": cell, "V": job.V, **MAIN_JOB, "step": time_interleaved(fns, warmup, repeats)}
        rows.append(row)
        print(f"  done main job {cell}", file=sys.stderr)
    return rows


def main_job_table(rows: list[dict]) -> str:
    has_torch = any("torch" in r["step"] for r in rows)
    head = ["cell", "step eager", "step captured", "captured/eager", "step captured fast_sigmoid"]
    if has_torch:
        head += ["step torch", "eager/torch", "captured/torch", "fast_sigmoid/torch"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in rows:
        s = r["step"]
        cells = [r["cell"].upper(), _ms(s["eager"]), _ms(s["captured"]), f"{s['captured'] / s['eager']:.2f}×",
                 _ms(s["fast"])]
        if has_torch:
            cells += [_ms(s["torch"]), f"{s['eager'] / s['torch']:.2f}×", f"{s['captured'] / s['torch']:.2f}×",
                      f"{s['fast'] / s['torch']:.2f}×"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def op_overhead(n: int = 20000) -> dict[str, float]:
    """Microseconds per op for ``a * b`` on 8-element float32 tensors: recorded, under no_grad, fwd+bwd."""
    a = tg.Tensor(np.ones(8, dtype=np.float32), requires_grad=True)
    b = tg.Tensor(np.full(8, 1.0001, dtype=np.float32))
    an, bn = a.array, b.array
    result = {}

    def record() -> None:
        for _ in range(n):
            a * b

    def no_record() -> None:
        with tg.no_grad():
            for _ in range(n):
                a * b

    def raw() -> None:
        for _ in range(n):
            an * bn

    def chain() -> None:  # n recorded ops in a chain, then backward through all of them
        y = a
        for _ in range(n):
            y = y * b
        y.sum().backward()

    fns = {"record": record, "no_grad": no_record, "numpy": raw, "fwd+bwd": chain}
    if torch is not None:
        at = torch.ones(8, requires_grad=True)
        bt = torch.full((8,), 1.0001)

        def torch_record() -> None:
            for _ in range(n):
                at * bt

        def torch_chain() -> None:
            y = at
            for _ in range(n):
                y = y * bt
            y.sum().backward()

        fns["torch record"] = torch_record
        fns["torch fwd+bwd"] = torch_chain
    for name, seconds in time_interleaved(fns, 1, 7).items():
        result[name] = seconds / n * 1e6
    a.grad = None
    return result


def scaling(cell: str = "lstm", short: int = 1000, long: int = 10000) -> dict:
    """Training-step time and peak memory at T = ``short`` and ``long`` (B4·I16·H32); ratio should be ≈ 10."""
    B, _, I, H = SIZES["long"]
    out = {}
    for T in (short, long):
        case = Case(cell, B, T, I, H, use_torch=False)
        seconds = time_interleaved({"tape": case.tape_step}, 1, 3 if T == short else 2)["tape"]
        out[T] = {"seconds": seconds, "peak": peak_memory(case.tape_step)}
        del case
        gc.collect()
    out["time_ratio"] = out[long]["seconds"] / out[short]["seconds"]
    out["memory_ratio"] = out[long]["peak"] / out[short]["peak"]
    return out


# --------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------


def environment(threads: int) -> dict[str, Any]:
    env: dict[str, Any] = {
        "python": platform.python_version(), "numpy": np.__version__, "machine": platform.machine(),
        "processor": _cpu_name(), "cores": os.cpu_count(), "threads": threads,
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE"),
    }
    try:
        from threadpoolctl import threadpool_info

        env["blas"] = [f"{i.get('internal_api')} {i.get('version')} kernel={i.get('architecture')} "
                       f"threads={i.get('num_threads')}" for i in threadpool_info()]
    except ImportError:
        env["blas"] = ["(install threadpoolctl to see the BLAS kernel)"]
    if torch is not None:
        torch.set_num_threads(threads)
        env["torch"] = f"{torch.__version__} threads={torch.get_num_threads()}"
    return env


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f}" if seconds < 10 else f"{seconds:.1f}s"


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f}"


def table(rows: list[dict]) -> str:
    """A markdown table: times in ms, ratios tape/numpy and tape/torch, peak MiB."""
    has_torch = any("torch" in r["step"] for r in rows)
    has_cap = any("captured" in r["step"] for r in rows)
    head = ["cell", "size (B·T·I·H)", "step tape", "step numpy", "tape/numpy"]
    has_fused = any("fused" in r["step"] for r in rows)
    if has_cap:
        head += ["step captured", "captured/numpy"]
    if has_fused:
        head += ["step fused", "fused/numpy"]
    if has_torch:
        head += ["step torch", "tape/torch"]
    if has_cap and has_torch:
        head += ["captured/torch"]
    head += ["fwd tape", "fwd numpy", "tape/numpy"]
    if has_torch:
        head += ["fwd torch"]
    head += ["peak MiB tape", "peak MiB numpy", "tape/numpy"]
    if has_cap:
        head += ["peak MiB captured", "captured/tape"]
    if has_fused:
        head += ["peak MiB fused", "fused/tape"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in rows:
        s, f, m = r["step"], r["forward"], r.get("peak")
        cells = [r["cell"].upper(), f"{r['size']} {r['B']}·{r['T']}·{r['I']}·{r['H']}",
                 _ms(s["tape"]), _ms(s["numpy"]), f"{s['tape'] / s['numpy']:.2f}×"]
        if has_cap:
            cells += [_ms(s["captured"]), f"{s['captured'] / s['numpy']:.2f}×"]
        if has_fused:
            cells += [_ms(s["fused"]), f"{s['fused'] / s['numpy']:.2f}×"] if "fused" in s else ["–", "–"]
        if has_torch:
            cells += [_ms(s["torch"]), f"{s['tape'] / s['torch']:.2f}×"] if "torch" in s else ["–", "–"]
        if has_cap and has_torch:
            cells += [f"{s['captured'] / s['torch']:.2f}×" if "torch" in s else "–"]
        cells += [_ms(f["tape"]), _ms(f["numpy"]), f"{f['tape'] / f['numpy']:.2f}×"]
        if has_torch:
            cells += [_ms(f["torch"]) if "torch" in f else "–"]
        if m:
            cells += [_mib(m["tape"]), _mib(m["numpy"]), f"{m['tape'] / m['numpy']:.2f}×"]
        else:
            cells += ["–", "–", "–"]
        if has_cap:
            cells += [_mib(m["captured"]), f"{m['captured'] / m['tape']:.2f}×"] if m else ["–", "–"]
        if has_fused:
            cells += [_mib(m["fused"]), f"{m['fused'] / m['tape']:.2f}×"] if m and "fused" in m else ["–", "–"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets(rows: list[dict], ops: dict | None, scale: dict | None,
            job: list[dict] | None = None) -> list[tuple[str, str, bool]]:
    """Each target of issues 6 and 14 with the measured figure and whether it is met."""
    checks = []
    for r in job or []:
        if "torch" in r["step"]:
            limit = {"lstm": 1.6, "gru": 1.0, "rnn": 0.9}[r["cell"]]
            ratio = r["step"]["captured"] / r["step"]["torch"]
            checks.append((f"main job {r['cell'].upper()}: captured step ≤ {limit}× PyTorch", f"{ratio:.2f}×",
                           ratio <= limit))
    for r in rows:
        s, f, m = r["step"], r["forward"], r.get("peak")
        name = f"{r['cell'].upper()} {r['size']}"
        limit = 1.3 if r["size"] == "medium" else 2.5
        ratio = s["tape"] / s["numpy"]
        checks.append((f"{name}: step ≤ {limit}× hand NumPy", f"{ratio:.2f}×", ratio <= limit))
        if "torch" in s:
            ratio = s["tape"] / s["torch"]
            if r["cell"] in ("rnn", "gru"):
                checks.append((f"{name}: step faster than PyTorch", f"{ratio:.2f}×", ratio < 1))
            elif r["size"] == "medium":
                checks.append((f"{name}: step ≤ 2× PyTorch's fused LSTM", f"{ratio:.2f}×", ratio <= 2))
        ratio = f["tape"] / f["numpy"]
        checks.append((f"{name}: no_grad forward ≤ 1.1× hand NumPy", f"{ratio:.2f}×", ratio <= 1.1))
        if m:
            ratio = m["tape"] / m["numpy"]
            checks.append((f"{name}: peak memory ≤ 1.5× hand NumPy", f"{ratio:.2f}×", ratio <= 1.5))
        if "captured" in s:  # issue 14
            limit = 1.1 if r["size"] == "medium" else 1.0
            ratio = s["captured"] / s["numpy"]
            checks.append((f"{name}: captured step ≤ {limit}× hand NumPy", f"{ratio:.2f}×", ratio <= limit))
        if "fused" in s:  # issue 14, the opt-in fuse_weight_grads
            limit = 1.1 if r["size"] == "medium" else 1.0
            ratio = s["fused"] / s["numpy"]
            checks.append((f"{name}: captured fuse_weight_grads step ≤ {limit}× hand NumPy", f"{ratio:.2f}×",
                           ratio <= limit))
        if m and "captured" in m:
            ratio = m["captured"] / m["tape"]
            checks.append((f"{name}: captured peak memory ≤ 1.1× eager's", f"{ratio:.2f}×", ratio <= 1.1))
    if ops:
        checks.append(("recording one small op ≤ 4 µs", f"{ops['record']:.2f} µs", ops["record"] <= 4))
    if scale:
        for key in ("time_ratio", "memory_ratio"):
            checks.append((f"T=10,000 / T=1,000 {key.split('_')[0]} ≤ 11", f"{scale[key]:.2f}", scale[key] <= 11))
    return checks


def main() -> int:
    global CLOCK
    args = ARGS or _parse_args()
    clock = args.clock if args.clock != "auto" else ("cpu" if args.threads == 1 else "wall")
    CLOCK = time.process_time if clock == "cpu" else time.perf_counter
    env = environment(args.threads)
    env["clock"] = {"cpu": "process CPU time (time.process_time)", "wall": "wall time (time.perf_counter)"}[clock]
    use_torch = torch is not None and not args.no_torch
    sizes = list(SIZES) if args.size == "all" else [args.size]
    cells = [c.strip().lower() for c in args.cells.split(",") if c.strip()]
    for c in cells:
        if c not in GATES:
            raise SystemExit(f"unknown cell {c!r}; expected rnn, lstm or gru")

    # Move the objects of the imported libraries (PyTorch's are hundreds of thousands) out of the cyclic
    # garbage collector's sight, so that a full collection costs what it would in a process that does not
    # import PyTorch. Same for every column; only the tape allocates enough Python objects to notice.
    gc.freeze()
    print("tinygrad_rnn benchmark:", " ".join(sys.argv[1:]) or "(defaults)")
    for key, value in env.items():
        print(f"  {key}: {value}")
    if env["OPENBLAS_CORETYPE"] or env["OPENBLAS_L2_SIZE"]:
        print("  note: OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are set and may slow NumPy; "
              "run with `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE` to benchmark")
    if args.only_main_job:
        sizes = []
    else:
        print("verifying gradients (max relative error):")
        for line in verify(cells, {s: SIZES[s] for s in sizes}, use_torch):
            print(line)

    rows = []
    for size in sizes:
        warmup, repeats = DEFAULT_RUNS[size]
        warmup = warmup if args.warmup is None else args.warmup
        repeats = repeats if args.repeats is None else args.repeats
        for cell in cells:
            row = bench_case(cell, size, warmup, repeats, use_torch, not args.skip_memory)
            rows.append(row)
            print(f"  done {cell} {size} ({repeats} runs)", file=sys.stderr)

    job = None
    if not args.skip_main_job:
        job = main_job(cells, 2, 11 if args.repeats is None else args.repeats, use_torch)
    ops = op_overhead() if not args.only_main_job else None
    scale = None if args.skip_scaling or args.only_main_job else scaling()

    print()
    if rows:
        print(f"Training step (forward + loss + backward) and no_grad forward, float32, median ms of {clock} time; "
              f"threads={args.threads}")
        print(table(rows))
        print()
    if ops:
        print("µs per op, a * b on 8-element float32 tensors: " +
              ", ".join(f"{k} {v:.2f}" for k, v in ops.items()))
    if scale:
        short, long = (k for k in scale if isinstance(k, int))
        print(f"LSTM B4·I16·H32 training step: T={short:,} {_ms(scale[short]['seconds'])} ms, "
              f"peak {_mib(scale[short]['peak'])} MiB; T={long:,} {_ms(scale[long]['seconds'])} ms, "
              f"peak {_mib(scale[long]['peak'])} MiB; ratios time {scale['time_ratio']:.2f}, "
              f"memory {scale['memory_ratio']:.2f}")
    print()
    if job:
        print(f"Main job: one training step of examples/char_lm.py's default model (Embedding({job[0]['V']}, 32) -> "
              f"cell(32, 128) -> Linear(128, {job[0]['V']}), B32·T64, cross-entropy, backward, clip_grad_norm_(1.0), "
              f"Adam), median ms of {clock} time; threads={args.threads}")
        print(main_job_table(job))
        print()
    checks = targets(rows, ops, scale, job)
    for what, figure, ok in checks:
        print(f"  [{'met' if ok else 'NOT met'}] {what}: {figure}")
    print(f"{sum(ok for _, _, ok in checks)}/{len(checks)} targets met")

    if args.save:
        os.makedirs(args.save, exist_ok=True)
        stem = os.path.join(args.save, "rnn_bench" + ("" if args.size == "all" else f"-{args.size}"))
        payload = {"command": " ".join(["python", *sys.argv]), "environment": env, "rows": rows, "ops_us": ops,
                   "scaling": None if scale is None else {str(k): v for k, v in scale.items()},
                   "main_job": job,
                   "targets": [{"target": w, "figure": f, "met": ok} for w, f, ok in checks]}
        with open(stem + ".json", "w") as f:
            json.dump(payload, f, indent=2)
        with open(stem + ".md", "w") as f:
            f.write(f"`{payload['command']}`\n\n" + (table(rows) + "\n\n" if rows else "")
                    + (main_job_table(job) + "\n\n" if job else ""))
            f.write("\n".join(f"- [{'x' if ok else ' '}] {w}: {fig}" for w, fig, ok in checks) + "\n")
        print(f"wrote {stem}.json and {stem}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
