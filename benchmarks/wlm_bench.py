#!/usr/bin/env python
"""One training step of pytorch/examples' word_language_model (its LSTM configuration), tinygrad_rnn against
PyTorch, one thread each, the same weights.

The model is that example's ``RNNModel('LSTM', ntoken, ninp=200, nhid=200, nlayers=2)`` without dropout:
``Embedding(V, 200) -> LSTM(200, 200, num_layers=2) -> Linear(200, V)`` on a (T=35, B=20) batch of token ids,
and a step is the example's ``train()`` body: zero the gradients, forward, ``cross_entropy`` of the (T·B, V)
logits, backward, ``clip_grad_norm_(0.25)``, and the update ``p.data.add_(p.grad, alpha=-lr)``.

``--decoder matmul`` writes the decoder as ``output @ W.T + b`` on the (T, B, H) output instead of
``nn.Linear``: that is where a broadcast operand's gradient used to be built as a (T, H, V) stack.

Times are medians of the process's CPU time (``time.process_time``), which other processes on a shared
machine do not inflate when everything runs on one thread; the two implementations take turns in every
repetition. Usage::

    PYTHONPATH=. python benchmarks/wlm_bench.py [--vocab 10000] [--repeats 7] [--decoder linear|matmul]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vocab", type=int, default=10000)
    parser.add_argument("--hidden", type=int, default=200)
    parser.add_argument("--steps", type=int, default=35, help="bptt length T")
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--decoder", choices=["linear", "matmul"], default="linear")
    args = parser.parse_args()

    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    import torch

    torch.set_num_threads(1)
    import tinygrad_rnn as tg

    V, H, T, B = args.vocab, args.hidden, args.steps, args.batch
    torch.manual_seed(0)
    t_enc, t_rnn, t_dec = torch.nn.Embedding(V, H), torch.nn.LSTM(H, H, 2), torch.nn.Linear(H, V)
    t_params = [*t_enc.parameters(), *t_rnn.parameters(), *t_dec.parameters()]

    enc, rnn, dec = tg.nn.Embedding(V, H), tg.nn.LSTM(H, H, 2), tg.nn.Linear(H, V)
    for ours, ref in ((enc, t_enc), (rnn, t_rnn), (dec, t_dec)):
        ours.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})
    params = [*enc.parameters(), *rnn.parameters(), *dec.parameters()]

    rng = np.random.default_rng(0)
    data = rng.integers(0, V, (T, B))
    target = rng.integers(0, V, (T * B,))
    lr = 20.0
    clip = getattr(getattr(tg.nn, "utils", None), "clip_grad_norm_", None) or tg.optim.clip_grad_norm_

    def ours_step() -> float:
        for p in params:
            p.grad = None
        emb = enc(tg.Tensor(data))
        output, _ = rnn(emb)
        if args.decoder == "linear":
            logits = dec(output)
        else:
            logits = output @ dec.weight.T + dec.bias
        loss = tg.functional.cross_entropy(logits.reshape(-1, V), target)
        loss.backward()
        clip(params, 0.25)
        for p in params:
            p.array -= lr * p.grad.array
        return loss.item()

    t_data, t_target = torch.from_numpy(data), torch.from_numpy(target)

    def torch_step() -> float:
        for p in t_params:
            p.grad = None
        output, _ = t_rnn(t_enc(t_data))
        logits = t_dec(output) if args.decoder == "linear" else output @ t_dec.weight.T + t_dec.bias
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), t_target)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(t_params, 0.25)
        with torch.no_grad():
            for p in t_params:
                p.data.add_(p.grad, alpha=-lr)
        return loss.item()

    first = ours_step(), torch_step()
    print(f"first-step loss: tinygrad_rnn {first[0]:.6f}  torch {first[1]:.6f}")
    samples: dict[str, list[float]] = {"tinygrad_rnn": [], "torch": []}
    for _ in range(args.repeats):
        for name, fn in (("tinygrad_rnn", ours_step), ("torch", torch_step)):
            gc.collect()
            start = time.process_time()
            fn()
            samples[name].append(time.process_time() - start)
    ours_t, torch_t = (statistics.median(samples[k]) for k in ("tinygrad_rnn", "torch"))
    load = open("/proc/loadavg").read().split()[:3] if hasattr(time, "process_time") else "?"
    print(f"V={V} H={H} T={T} B={B} decoder={args.decoder} repeats={args.repeats} load={' '.join(load)}")
    print(f"step (median CPU s): tinygrad_rnn {ours_t:.4f}  torch {torch_t:.4f}  ratio {ours_t / torch_t:.2f}x")


if __name__ == "__main__":
    main()
