"""Determinism (issue 13 item 5): on the CPU the same seed gives bit-identical training, in any thread."""

from __future__ import annotations

import threading

import numpy as np

import tinygrad_rnn as tg
from tinygrad_rnn import nn


def _train(seed: int) -> list[np.ndarray]:
    """Three Adam steps of a small LSTM language model on random data, all drawn from the seeded generator."""
    tg.manual_seed(seed)
    emb, lstm, head = nn.Embedding(7, 5), nn.LSTM(5, 6, num_layers=2, dropout=0.3), nn.Linear(6, 7)
    params = list(emb.parameters()) + list(lstm.parameters()) + list(head.parameters())
    opt = tg.optim.Adam(params, lr=0.01)
    for _ in range(3):
        ids = tg.randint(0, 7, (9, 2))
        out, _ = lstm(emb(ids[:-1]))
        loss = tg.nn.functional.cross_entropy(head(out).reshape(-1, 7), ids[1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return [np.array(p.array) for p in params]


def test_same_seed_trains_bit_identically_in_any_thread():
    first = _train(5)
    results: list[list[np.ndarray]] = []
    worker = threading.Thread(target=lambda: results.append(_train(5)))  # seeded and trained in another thread
    worker.start()
    worker.join()
    for a, b in zip(first, results[0], strict=True):
        assert a.tobytes() == b.tobytes()
    assert any(a.tobytes() != b.tobytes() for a, b in zip(first, _train(6), strict=True))
