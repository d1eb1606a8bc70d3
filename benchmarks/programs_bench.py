"""The kept PyTorch programs (tests/programs/): float64 agreement with PyTorch, and word_language_model's training
step time against PyTorch's (issue 11).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=. python benchmarks/programs_bench.py [--skip-agreement]

* agreement: each program runs under torch and under tinygrad_rnn from the same draws (tests/programs/driver.py),
  in float64, on the tests' small offline data; printed: the number of losses compared and the largest relative
  difference, over the first optimizer step(s) and over the whole run.
* step time: word_language_model's training step exactly as its ``train()`` does it (repackage the hidden state,
  ``model.zero_grad()``, forward, ``NLLLoss``, backward, ``clip_grad_norm_(0.25)``, ``p.data.add_(p.grad,
  alpha=-lr)``), with the program's own ``RNNModel`` (model.py, imports only changed; PyTorch runs the original)
  at its default sizes (2-layer LSTM, emsize = nhid = 200, bptt 35, batch 20, dropout 0.2) and a 10,000-word
  vocabulary (Penn Treebank's), float32, the same weights in both. One thread each (``torch.set_num_threads(1)``,
  threadpoolctl for NumPy's BLAS); steps alternate between the two; medians of wall and process CPU time (the
  fairer figure on a shared machine) and the machine's load are printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import types

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROGRAMS = os.path.join(ROOT, "tests", "programs")
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, PROGRAMS)


def agreement() -> None:
    import test_programs as tp

    # (program, args, prepare, losses per first optimizer step(s))
    cases = [
        ("time_sequence_prediction", tp.TIME_SEQ, tp.TIME_SEQ_ARGS, tp.prepare_sine, 20),  # LBFGS step 1: 20 closures
        ("word_language_model LSTM", tp.WORD_LM, tp.lm_args("LSTM"), tp.prepare_corpus, 3),
        ("word_language_model GRU", tp.WORD_LM, tp.lm_args("GRU"), tp.prepare_corpus, 3),
        ("word_language_model RNN_TANH", tp.WORD_LM, tp.lm_args("RNN_TANH"), tp.prepare_corpus, 3),
        ("char_rnn_classification", tp.CHAR_RNN, [], tp.prepare_names, 64 * 3),  # 3 epochs (one SGD step each)
    ]
    print("program | losses compared | max rel. diff, first steps | max rel. diff, whole run | tinygrad / torch wall")
    for name, program, args, prepare, first in cases:
        with tempfile.TemporaryDirectory() as tmp:
            import pathlib

            ref, got = tp.both(program, pathlib.Path(tmp), args, prepare)
            n = len(ref["losses"])
            print(f"{name} | {n} | {tp.agreement(ref, got, first):.1e} (first {first}) | "
                  f"{tp.agreement(ref, got, n):.1e} | {got['wall_s']:.1f} s / {ref['wall_s']:.1f} s", flush=True)


def load_model_module(framework: str) -> types.ModuleType:
    from driver import to_torch

    path = os.path.join(PROGRAMS, "word_language_model", "model.py")
    with open(path, encoding="utf-8") as f:
        source = f.read()
    module = types.ModuleType(f"wlm_model_{framework}")
    module.__file__ = path
    exec(compile(to_torch(source) if framework == "torch" else source, path, "exec"), module.__dict__)
    return module


def step_time(steps: int, warmup: int) -> None:
    import torch
    from threadpoolctl import threadpool_limits

    import tinygrad_rnn as tg

    torch.set_num_threads(1)
    ntokens, emsize, nhid, nlayers, dropout, bptt, batch, lr, clip = 10000, 200, 200, 2, 0.2, 35, 20, 20.0, 0.25
    models = {}
    for name, lib in (("torch", torch), ("tinygrad_rnn", tg)):
        lib.manual_seed(1111)
        models[name] = load_model_module("torch" if name == "torch" else "tg").RNNModel(
            "LSTM", ntokens, emsize, nhid, nlayers, dropout, False)
    models["tinygrad_rnn"].load_state_dict({k: v.detach().numpy() for k, v in models["torch"].state_dict().items()})
    rng = np.random.default_rng(0)
    stream = rng.integers(0, ntokens, size=(bptt * (steps + warmup + 1) + 1, batch))

    def make_step(lib, model):
        criterion = lib.nn.NLLLoss()
        state = {"hidden": model.init_hidden(batch), "i": 0}

        def repackage_hidden(h):
            return h.detach() if isinstance(h, lib.Tensor) else tuple(repackage_hidden(v) for v in h)

        def step():
            i = state["i"] * bptt % (stream.shape[0] - bptt - 1)
            state["i"] += 1
            data = lib.tensor(stream[i:i + bptt])
            targets = lib.tensor(stream[i + 1:i + 1 + bptt]).view(-1)
            start, cpu = time.perf_counter(), time.process_time()
            model.zero_grad()
            hidden = repackage_hidden(state["hidden"])
            output, hidden = model(data, hidden)
            loss = criterion(output, targets)
            loss.backward()
            lib.nn.utils.clip_grad_norm_(model.parameters(), clip)
            for p in model.parameters():
                p.data.add_(p.grad, alpha=-lr)
            loss.item()
            state["hidden"] = hidden
            return time.perf_counter() - start, time.process_time() - cpu

        return step

    runs = {name: make_step(torch if name == "torch" else tg, m) for name, m in models.items()}
    times: dict[str, list[float]] = {name: [] for name in runs}
    cpu_times: dict[str, list[float]] = {name: [] for name in runs}
    load_before = os.getloadavg()
    with threadpool_limits(limits=1):
        for k in range(warmup + steps):
            for name, step in runs.items():
                t, c = step()
                if k >= warmup:
                    times[name].append(t)
                    cpu_times[name].append(c)
    load_after = os.getloadavg()
    med = {name: statistics.median(v) for name, v in times.items()}
    print(f"\nword_language_model training step (LSTM 2x200, vocab {ntokens}, bptt {bptt}, batch {batch}, float32, "
          f"1 thread each, {steps} steps after {warmup} warm-up, alternating):")
    cpu = {name: statistics.median(v) for name, v in cpu_times.items()}
    for name, m in med.items():
        q = np.percentile(times[name], [25, 75])
        print(f"  {name:13s} wall median {m * 1000:7.1f} ms (IQR {q[0] * 1000:.1f}-{q[1] * 1000:.1f}), "
              f"process CPU median {cpu[name] * 1000:7.1f} ms")
    print(f"  ratio tinygrad_rnn / torch: {med['tinygrad_rnn'] / med['torch']:.2f}x wall, "
          f"{cpu['tinygrad_rnn'] / cpu['torch']:.2f}x CPU")
    print(f"  load average before/after: {load_before[0]:.2f} / {load_after[0]:.2f} ({os.cpu_count()} CPUs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-agreement", action="store_true")
    parser.add_argument("--skip-step-time", action="store_true")
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    if not args.skip_agreement:
        agreement()
    if not args.skip_step_time:
        step_time(args.steps, args.warmup)


if __name__ == "__main__":
    main()
