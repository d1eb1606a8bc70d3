#!/usr/bin/env python
"""GPU benchmark: one LSTM training step on CuPy, against NumPy on the CPU and PyTorch's CUDA LSTM.

The step is the one of ``rnn_bench.py`` (forward over the sequence, the scalar loss ``sum(output ⊙ R)``,
backward to every parameter), by default at batch 64, T 128, input 256, hidden 512, float32, for

* ``tape cuda``  — ``tinygrad_rnn.nn.LSTM`` on ``device='cuda'`` (CuPy arrays under the same tape);
* ``hand cuda``  — the hand-written forward + hand-derived BPTT of ``rnn_bench.py``, run on CuPy arrays: the
  same kernels without the tape around them;
* ``tape cpu``   — the same layer on NumPy (a few runs only: it is slow at this size);
* ``torch cuda`` — ``torch.nn.LSTM`` on CUDA (cuDNN), when PyTorch sees a GPU.

For each GPU column, per step (medians):

* ``wall``   — elapsed time, the device synchronised before and after;
* ``issue``  — time until the Python call returns, before synchronising: the Python and kernel-launch work.
  When it is close to ``wall`` the GPU waits for Python (or something in the step synchronises);
* ``events`` — CUDA events recorded on the stream before and after the step (GPU time including idle gaps);
* ``kernels`` — the sum of the kernel (and memcpy/memset) durations that the PyTorch profiler (CUPTI) saw
  during the step, when it can see them: the time the GPU actually computed. ``wall - kernels`` is then
  the overhead (Python, launches, gaps).

Gradients are checked before timing: CuPy against NumPy and against PyTorch (float32, relative ≤ 1e-3).

Usage::

    python benchmarks/gpu_bench.py                      # prints a table, writes benchmarks/results/gpu_bench.*
    python benchmarks/gpu_bench.py --out "$OUT" --repeats 5 --cpu-repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import rnn_bench

import tinygrad_rnn as tg
from tinygrad_rnn import nn
from tinygrad_rnn.backend import cuda_module, cuda_unavailable_reason, to_numpy


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--input", type=int, default=256)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=10, help="timed GPU runs per column")
    parser.add_argument("--warmup", type=int, default=3, help="untimed GPU runs first (CuPy compiles kernels)")
    parser.add_argument("--cpu-repeats", type=int, default=2, help="timed NumPy runs (0: skip the CPU column)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", default=os.path.join(HERE, "results"), help="folder for gpu_bench.json/.md")
    return parser.parse_args()


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1e3


# --------------------------------------------------------------------------------------------------
# The implementations
# --------------------------------------------------------------------------------------------------


class TapeLSTM:
    """tinygrad_rnn's LSTM on one device, with its input and loss weights there."""

    def __init__(self, state: dict, x: np.ndarray, R: np.ndarray, device: str):
        I, H = x.shape[-1], R.shape[-1]
        self.layer = nn.LSTM(I, H, device=device)
        self.layer.load_state_dict(state)
        self.x, self.R = tg.Tensor(x, device=device), tg.Tensor(R, device=device)

    def step(self) -> None:
        for p in self.layer.parameters():
            p.grad = None
        out, _ = self.layer(self.x)
        (out * self.R).sum().backward()

    def grads(self) -> dict[str, np.ndarray]:
        self.step()
        return {name: to_numpy(p.grad.array) for name, p in self.layer.named_parameters()}


class HandLSTM:
    """rnn_bench's hand-written forward + BPTT on the arrays of one device."""

    def __init__(self, state: dict, x: np.ndarray, R: np.ndarray, xp: Any):
        self.p = {"W_ih": xp.asarray(state["weight_ih_l0"]), "W_hh": xp.asarray(state["weight_hh_l0"]),
                  "b_ih": xp.asarray(state["bias_ih_l0"]), "b_hh": xp.asarray(state["bias_hh_l0"])}
        self.x, self.R = xp.asarray(x), xp.asarray(R)

    def step(self) -> dict:
        return rnn_bench.hand_train_step("lstm", self.p, self.x, self.R)[1]

    def grads(self) -> dict[str, np.ndarray]:
        g = self.step()
        names = {"W_ih": "weight_ih_l0", "W_hh": "weight_hh_l0", "b_ih": "bias_ih_l0", "b_hh": "bias_hh_l0"}
        return {names[k]: to_numpy(v) for k, v in g.items()}


class TorchLSTM:
    def __init__(self, torch: Any, state: dict, x: np.ndarray, R: np.ndarray):
        I, H = x.shape[-1], R.shape[-1]
        self.torch = torch
        self.layer = torch.nn.LSTM(I, H).cuda()
        with torch.no_grad():
            for name, value in self.layer.named_parameters():
                value.copy_(torch.from_numpy(state[name]))
        self.x, self.R = torch.from_numpy(x).cuda(), torch.from_numpy(R).cuda()

    def step(self) -> None:
        self.layer.zero_grad(set_to_none=True)
        out, _ = self.layer(self.x)
        (out * self.R).sum().backward()

    def grads(self) -> dict[str, np.ndarray]:
        self.step()
        return {name: p.grad.detach().cpu().numpy() for name, p in self.layer.named_parameters()}


# --------------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------------


def time_gpu(step: Callable[[], Any], sync: Callable[[], None], make_event: Callable[[], Any],
             elapsed_s: Callable[[Any, Any], float], warmup: int, repeats: int) -> dict[str, float]:
    """wall / issue / events medians (ms) of ``step`` on the GPU."""
    for _ in range(warmup):
        step()
    sync()
    wall, issue, events = [], [], []
    for _ in range(repeats):
        start_event, end_event = make_event(), make_event()
        sync()
        start_event.record()
        t0 = time.perf_counter()
        step()
        t1 = time.perf_counter()
        end_event.record()
        sync()
        t2 = time.perf_counter()
        wall.append(t2 - t0)
        issue.append(t1 - t0)
        events.append(elapsed_s(start_event, end_event))
    return {"wall": median_ms(wall), "issue": median_ms(issue), "events": median_ms(events)}


def kernel_ms(torch: Any, step: Callable[[], Any], sync: Callable[[], None], runs: int = 2) -> float | None:
    """Sum of GPU activity durations per step seen by the PyTorch profiler (CUPTI), or None if it sees none."""
    from torch.profiler import ProfilerActivity, profile

    sync()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(runs):
            step()
        sync()
    total_us = 0.0
    for evt in prof.key_averages():
        if str(getattr(evt, "device_type", "")) != "DeviceType.CUDA":
            continue  # host-side entries (runtime calls); only device activity counts
        value = getattr(evt, "self_device_time_total", None)
        if value is None:
            value = getattr(evt, "self_cuda_time_total", 0.0)
        total_us += float(value or 0.0)
    return total_us / runs / 1e3 if total_us > 0 else None


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def main() -> int:
    args = parse_args()
    reason = cuda_unavailable_reason()
    if reason is not None:
        print(f"gpu_bench: no usable GPU: {reason}")
        return 2
    cupy = cuda_module()

    try:
        import torch

        torch_cuda = torch.cuda.is_available()
    except Exception:  # noqa: BLE001 - PyTorch missing or broken: leave its column out
        torch, torch_cuda = None, False

    B, T, I, H = args.batch, args.seq, args.input, args.hidden
    rng = np.random.default_rng(0)
    tg.manual_seed(0)
    state = {k: v.numpy() for k, v in nn.LSTM(I, H).state_dict().items()}
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    R = rng.standard_normal((T, B, H)).astype(np.float32)
    device = args.device

    env = {"python": platform.python_version(), "numpy": np.__version__, "cupy": cupy.__version__,
           "gpu": cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)["name"].decode(),
           "cuda_runtime": cupy.cuda.runtime.runtimeGetVersion(),
           "torch": None if torch is None else f"{torch.__version__} cuda={torch_cuda}",
           "size": f"B{B} T{T} I{I} H{H} float32", "cpu_cores": os.cpu_count()}
    print("gpu_bench:", json.dumps(env))

    impls: dict[str, Any] = {"tape cuda": TapeLSTM(state, x, R, device), "hand cuda": HandLSTM(state, x, R, cupy)}
    if torch_cuda:
        impls["torch cuda"] = TorchLSTM(torch, state, x, R)
    cpu = TapeLSTM(state, x, R, "cpu") if args.cpu_repeats > 0 else None

    # gradients first: every column against the tape on the GPU
    reference = impls["tape cuda"].grads()
    checks = {}
    for name, impl in [*impls.items(), *([("tape cpu", cpu)] if cpu else [])]:
        if name == "tape cuda":
            continue
        try:
            theirs = impl.grads()
            checks[name] = max(rel_err(reference[k], theirs[k]) for k in reference)
        except Exception as exc:  # noqa: BLE001 - report and go on
            checks[name] = f"failed: {type(exc).__name__}: {exc}"
    print("gradient check (max relative error against tape cuda):", checks)
    bad = [k for k, v in checks.items() if not isinstance(v, float) or v > 1e-3]

    def cupy_sync() -> None:
        cupy.cuda.Device().synchronize()

    def cupy_elapsed(a: Any, b: Any) -> float:
        return cupy.cuda.get_elapsed_time(a, b) / 1e3

    rows: dict[str, dict[str, Any]] = {}
    for name, impl in impls.items():
        try:
            if name == "torch cuda":
                sync = torch.cuda.synchronize
                row = time_gpu(impl.step, sync, lambda: torch.cuda.Event(enable_timing=True),
                               lambda a, b: a.elapsed_time(b) / 1e3, args.warmup, args.repeats)
            else:
                sync = cupy_sync
                row = time_gpu(impl.step, sync, cupy.cuda.Event, cupy_elapsed, args.warmup, args.repeats)
            try:
                row["kernels"] = kernel_ms(torch, impl.step, sync) if torch_cuda else None
            except Exception as exc:  # noqa: BLE001 - the profiler is optional
                row["kernels"] = None
                print(f"  {name}: no kernel times from the PyTorch profiler ({type(exc).__name__}: {exc})")
        except Exception as exc:  # noqa: BLE001
            row = {"error": f"{type(exc).__name__}: {exc}"}
            traceback.print_exc()
        rows[name] = row
        print(f"  {name}: {row}", flush=True)
    if cpu is not None:
        cpu.step()
        walls = []
        for _ in range(args.cpu_repeats):
            t0 = time.perf_counter()
            cpu.step()
            walls.append(time.perf_counter() - t0)
        rows["tape cpu"] = {"wall": median_ms(walls)}
        print(f"  tape cpu: {rows['tape cpu']}", flush=True)

    def cell(row: dict, key: str) -> str:
        value = row.get(key)
        return "–" if value is None else f"{value:.1f}"

    title = f"LSTM training step, B{B}·T{T}·I{I}·H{H} float32, ms per step (median of {args.repeats}); {env['gpu']}"
    lines = [title, "",
             "| implementation | wall | issue (Python + launch) | CUDA events | kernels | wall − kernels |",
             "|---|---|---|---|---|---|"]
    for name, row in rows.items():
        if "error" in row:
            lines.append(f"| {name} | error: {row['error']} | | | | |")
            continue
        over = row["wall"] - row["kernels"] if row.get("kernels") is not None else None
        lines.append(f"| {name} | {cell(row, 'wall')} | {cell(row, 'issue')} | {cell(row, 'events')} | "
                     f"{cell(row, 'kernels')} | {'–' if over is None else f'{over:.1f}'} |")
    if "torch cuda" in rows and "wall" in rows["torch cuda"] and "wall" in rows.get("tape cuda", {}):
        lines.append("")
        lines.append(f"tape cuda / torch cuda: {rows['tape cuda']['wall'] / rows['torch cuda']['wall']:.1f}×; "
                     f"tape cuda / hand cuda: {rows['tape cuda']['wall'] / rows['hand cuda']['wall']:.2f}×"
                     + (f"; tape cpu / tape cuda: {rows['tape cpu']['wall'] / rows['tape cuda']['wall']:.1f}×"
                        if "tape cpu" in rows else ""))
    lines.append("")
    lines.append("gradient check (max relative error against tape cuda): "
                 + ", ".join(f"{k} {v:.1e}" if isinstance(v, float) else f"{k} {v}" for k, v in checks.items()))
    table = "\n".join(lines)
    print()
    print(table)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "gpu_bench.json"), "w") as f:
        json.dump({"environment": env, "rows": rows, "gradient_check": checks}, f, indent=2, default=str)
    with open(os.path.join(args.out, "gpu_bench.md"), "w") as f:
        f.write(table + "\n")
    if bad:
        print(f"gpu_bench: gradient check failed for {bad}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
