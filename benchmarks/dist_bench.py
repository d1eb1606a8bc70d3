#!/usr/bin/env python
"""Data-parallel training of the char-LM on 1 and 2 MPI ranks: characters per second and the allreduce's share.

The model and data are ``examples/char_lm.py``'s defaults (LSTM, embed 32, hidden 128, global batch 32 streams
of 64 characters, the Python docs' text, float32). The script launches itself with ``mpiexec -n P`` for each
P in ``--ranks`` and every rank trains ``--steps`` steps after ``--warmup`` untimed ones:

* **strong scaling** (the global batch fixed at ``--batch-size`` streams, split over the ranks: what
  ``char_lm.py --distributed`` does), and
* **weak scaling** (``--batch-size`` streams on every rank, so P times the global batch).

Each step is timed in parts with a wall clock: *compute* (forward, backward, clipping, Adam), *allreduce*
(``allreduce_gradients``: packing, the MPI call, unpacking, and any wait for the slower rank). It also times
the bare allreduce of the gradients (100 calls, each after a barrier, no training in between) to separate
the transfer from the waiting; its fastest call is the transfer on an undisturbed machine. *Compute CPU*
is the process CPU time of the compute parts: on a quiet machine with one thread per rank it equals their
wall time, so "chars/s from CPU" (chars / (compute CPU + fastest bare allreduce)) is what a quiet 2-core
machine would give, while the wall-clock columns also measure the neighbours. Medians over steps, the
slowest rank's median reported. The machine's load average (``os.getloadavg``) is read before and after
each configuration. BLAS threads are 1 per rank.

A one-process sweep of the per-rank batch (1 .. --batch-size streams, ``--repeats`` launches) gives the compute
time per step as a function of the batch, which the ring-allreduce cost model (printed last; see README.md)
uses to predict 8 and 64 machines at 10 and 100 Gb/s.

Usage (benchmarks/README.md's table came from the first line)::

    python benchmarks/dist_bench.py --save
    python benchmarks/dist_bench.py --ranks 1,2 --steps 20
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ranks", default="1,2", help="comma-separated numbers of ranks (default 1,2)")
    p.add_argument("--steps", type=int, default=40, help="timed training steps per configuration (default 40)")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first (default 5)")
    p.add_argument("--batch-size", type=int, default=32, help="streams: global (strong) or per rank (weak)")
    p.add_argument("--seq-len", type=int, default=64, help="characters per stream and step (default 64)")
    p.add_argument("--repeats", type=int, default=3,
                   help="launches of every configuration, taking turns; the table shows medians (default 3)")
    p.add_argument("--skip-sweep", action="store_true", help="skip the one-process batch sweep")
    p.add_argument("--save", nargs="?", const=RESULTS, default=None, metavar="DIR",
                   help="also write dist_bench.json and dist_bench.md to DIR (default benchmarks/results)")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # set by the launcher: strong|weak|sweep
    return p.parse_args(argv)


def _char_lm():
    spec = importlib.util.spec_from_file_location("char_lm", os.path.join(ROOT, "examples", "char_lm.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _median(xs: list[float]) -> float:
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


def _train(args: argparse.Namespace, streams_here: int, dist, comm) -> dict:
    """Train on this rank's ``streams_here`` streams; per-step wall times of compute and allreduce."""
    import numpy as np

    import tinygrad_rnn as tg
    from tinygrad_rnn import optim

    char_lm = _char_lm()
    text, _ = char_lm.default_text()
    vocab = sorted(set(text))
    index = {ch: i for i, ch in enumerate(vocab)}
    ids = np.array([index[ch] for ch in text], dtype=np.int64)
    rank, size = comm.Get_rank(), comm.Get_size()
    streams = char_lm.batchify(ids, streams_here * size)[rank * streams_here : (rank + 1) * streams_here]
    tg.manual_seed(0)
    model = char_lm.CharLM(len(vocab), 32, 128, 1, "lstm", "cpu")
    params = list(model.parameters())
    opt = optim.Adam(params, lr=3e-3)
    dist.broadcast_parameters(model, comm=comm)
    compute, reduce, total, cpu = [], [], [], []
    state = None
    for step in range(args.warmup + args.steps):
        start = step * args.seq_len
        x = streams[:, start : start + args.seq_len].T
        y = streams[:, start + 1 : start + 1 + args.seq_len].T
        c0, t0 = time.process_time(), time.perf_counter()
        loss, state = char_lm.sequence_loss(model, x, y, state, "cpu")
        state = char_lm.detach_state(state)
        opt.zero_grad()
        loss.backward()
        t1, c1 = time.perf_counter(), time.process_time()
        dist.allreduce_gradients(params, weight=y.size, comm=comm)
        t2, c2 = time.perf_counter(), time.process_time()
        optim.clip_grad_norm_(params, 1.0)
        opt.step()
        t3, c3 = time.perf_counter(), time.process_time()
        if step >= args.warmup:
            compute.append((t1 - t0) + (t3 - t2))
            reduce.append(t2 - t1)
            total.append(t3 - t0)
            cpu.append((c1 - c0) + (c3 - c2))  # CPU time of the compute only (MPI busy-waits while it waits)
    bare = []
    for _ in range(100):  # the allreduce alone, the ranks in step
        comm.Barrier()
        t0 = time.perf_counter()
        dist.allreduce_gradients(params, comm=comm)
        bare.append(time.perf_counter() - t0)
    nbytes = sum(p.grad.array.nbytes for p in params)
    return {"step": _median(total), "compute": _median(compute), "allreduce": _median(reduce),
            "bare_allreduce": _median(bare), "bare_allreduce_min": min(bare), "cpu": _median(cpu), "grad_bytes": nbytes,
            "params": sum(p.numel() for p in params), "streams_per_rank": streams_here}


def _worker(args: argparse.Namespace) -> None:
    import tinygrad_rnn.distributed as dist

    rank, size = dist.init()
    comm = dist._comm()
    if args.worker == "sweep":
        from mpi4py import MPI

        rows = []
        for b in sorted({1, 2, 4, 8, 16, args.batch_size}):
            if b <= args.batch_size:
                rows.append(_train(args, b, dist, MPI.COMM_SELF))
        print(json.dumps(rows), flush=True)
        return
    streams_here = args.batch_size // size if args.worker == "strong" else args.batch_size
    result = _train(args, streams_here, dist, comm)
    everyone = comm.gather(result, root=0)
    if rank == 0:
        keys = ("step", "compute", "allreduce", "bare_allreduce", "bare_allreduce_min", "cpu")
        slowest = {k: max(r[k] for r in everyone) for k in keys}
        slowest.update({k: result[k] for k in ("grad_bytes", "params", "streams_per_rank")})
        slowest["ranks"] = size
        slowest["chars"] = size * streams_here * args.seq_len  # per step, all ranks together
        print(json.dumps(slowest), flush=True)


def _launch(args: argparse.Namespace, n: int, mode: str) -> dict | list:
    from tinygrad_rnn.distributed import mpiexec_command

    command = mpiexec_command(n, [os.path.abspath(__file__), "--worker", mode, "--steps", str(args.steps),
                                  "--warmup", str(args.warmup), "--batch-size", str(args.batch_size),
                                  "--seq-len", str(args.seq_len)])
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    load_before = os.getloadavg()[0]
    out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800, check=False)
    if out.returncode != 0:
        raise SystemExit(f"dist_bench: {' '.join(command)} failed:\n{out.stderr}")
    result = json.loads([line for line in out.stdout.splitlines() if line.startswith(("{", "["))][-1])
    if isinstance(result, dict):
        result.update(mode=mode, load_before=load_before, load_after=os.getloadavg()[0])
    return result


def cost_model(grad_bytes: int, sweep: list[dict], seq_len: int, streams: int, alpha: float = 10e-6) -> list[str]:
    """The ring-allreduce model against the measured compute, for 8 and 64 machines at 10 and 100 Gb/s.

    A ring allreduce of N bytes over p machines is a reduce-scatter and an all-gather of p-1 steps each, every
    step sending N/p bytes to the next machine: 2(p-1)/p·N bytes per machine, in
    T(p) = 2(p-1)·α + 2(p-1)/p·N/β (α the latency of one message, β the link's bytes per second).
    The compute per step t(b) for b streams on one machine is fitted as a + c·b to the sweep's CPU times
    (CPU time: what a quiet machine gives with one thread).
    """
    import numpy as np

    b = np.array([s["streams_per_rank"] for s in sweep], dtype=float)
    c, a = np.polyfit(b, np.array([s["cpu"] for s in sweep]), 1)

    def t(n: float) -> float:
        return a + c * n

    lines = [f"Fit of the one-process sweep: t(b) = {1e3 * a:.1f} ms + {1e3 * c:.2f} ms × b; N = {grad_bytes:,} bytes "
             f"of float32 gradients; α = {1e6 * alpha:.0f} µs per message (TCP-class; RDMA is nearer 2 µs).", "",
             "| machines | link | allreduce ms = bandwidth + latency | weak: step ms | weak: efficiency "
             "| weak: chars/s | strong: streams per machine | strong: speed-up | comm / compute (strong) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for p in (8, 64):
        for gbit in (10, 100):
            bandwidth = 2 * (p - 1) / p * grad_bytes / (gbit * 1e9 / 8)
            latency = 2 * (p - 1) * alpha
            comm = bandwidth + latency
            weak = t(streams) + comm  # `streams` per machine: p times the batch
            global_batch = max(streams, p)  # strong: the batch fixed (at least one stream per machine)
            per = global_batch / p
            lines.append(
                f"| {p} | {gbit} Gb/s | {1e3 * comm:.2f} = {1e3 * bandwidth:.2f} + {1e3 * latency:.2f} "
                f"| {1e3 * weak:.1f} | {100 * t(streams) / weak:.1f} % | {p * streams * seq_len / weak:,.0f} "
                f"| {per:g} of {global_batch} | {t(global_batch) / (t(per) + comm):.2f}× | {comm / t(per):.3f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.worker:
        _worker(args)
        return 0
    import numpy as np

    ranks = [int(r) for r in args.ranks.split(",")]
    configs = [(mode, n) for mode in ("strong", "weak") for n in ranks if not (mode == "weak" and n == 1)]
    runs = [[_launch(args, n, mode) for mode, n in configs] for _ in range(args.repeats)]  # taking turns
    rows = []
    for i in range(len(configs)):
        got = [run[i] for run in runs]
        row = {k: (_median([g[k] for g in got]) if isinstance(v, float) else v) for k, v in got[0].items()}
        row["load_before"] = min(g["load_before"] for g in got)
        row["load_after"] = max(g["load_after"] for g in got)
        rows.append(row)
    sweeps = [] if args.skip_sweep else [_launch(args, 1, "sweep") for _ in range(args.repeats)]
    sweep = [{k: (_median([s[i][k] for s in sweeps]) if isinstance(v, float) else v) for k, v in row.items()}
             for i, row in enumerate(sweeps[0])] if sweeps else []
    base = next(r for r in rows if r["ranks"] == 1)
    lines = [
        f"Machine: {os.cpu_count()} cores; Python {sys.version.split()[0]}, NumPy {np.__version__}, 1 BLAS thread "
        f"per rank; {args.steps} timed steps after {args.warmup}, {args.repeats} launches per row taking turns; "
        "times are medians over the launches of the slowest rank's median step.",
        "",
        "| scaling | ranks | streams/rank | step ms | compute ms | allreduce ms | allreduce share "
        "| bare allreduce ms (median / min) "
        "| chars/s | speed-up | compute CPU ms | chars/s from CPU | speed-up from CPU | load avg (min → max) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        per_s = r["chars"] / r["step"]
        # a quiet machine: the compute's CPU time + the fastest bare allreduce (the transfer without waiting)
        per_cpu = r["chars"] / (r["cpu"] + r["bare_allreduce_min"])
        base_s, base_cpu = base["chars"] / base["step"], base["chars"] / (base["cpu"] + base["bare_allreduce_min"])
        ms = {k: 1e3 * r[k] for k in ("step", "compute", "allreduce", "bare_allreduce", "bare_allreduce_min", "cpu")}
        lines.append(
            f"| {r['mode']} | {r['ranks']} | {r['streams_per_rank']} | {ms['step']:.1f} | {ms['compute']:.1f} "
            f"| {ms['allreduce']:.2f} | {100 * r['allreduce'] / r['step']:.1f} % "
            f"| {ms['bare_allreduce']:.3f} / {ms['bare_allreduce_min']:.3f} "
            f"| {per_s:,.0f} | {per_s / base_s:.2f}× | {ms['cpu']:.1f} | {per_cpu:,.0f} | {per_cpu / base_cpu:.2f}× "
            f"| {r['load_before']:.2f} → {r['load_after']:.2f} |")
    lines += ["", f"Gradients: {base['params']:,} parameters, {base['grad_bytes']:,} bytes (float32), one bucket."]
    if sweep:
        lines += ["", "One process, compute per step against the batch (the cost model's t(b); medians of "
                  f"{len(sweeps)} launches):", "",
                  "| streams | step ms (wall) | CPU ms/step | CPU ms per stream |", "|---|---|---|---|"]
        lines += [f"| {s['streams_per_rank']} | {1e3 * s['step']:.1f} | {1e3 * s['cpu']:.1f} "
                  f"| {1e3 * s['cpu'] / s['streams_per_rank']:.2f} |" for s in sweep]
        lines += ["", "The ring-allreduce cost model with these measurements (see README.md):", ""]
        lines += cost_model(base["grad_bytes"], sweep, args.seq_len, args.batch_size)
    table = "\n".join(lines)
    print(table)
    if args.save:
        os.makedirs(args.save, exist_ok=True)
        with open(os.path.join(args.save, "dist_bench.json"), "w", encoding="utf-8") as f:
            json.dump({"rows": rows, "runs": runs, "sweep": sweep, "sweeps": sweeps, "args": vars(args)}, f, indent=1)
        with open(os.path.join(args.save, "dist_bench.md"), "w", encoding="utf-8") as f:
            f.write(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
