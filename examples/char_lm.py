"""Train a character-level language model with truncated backpropagation through time.

The model is ``Embedding -> RNN/LSTM/GRU -> Linear`` over characters. The text is cut into ``batch_size``
parallel streams; each training step reads the next ``seq_len`` characters of every stream, and the hidden
state is carried from one chunk to the next but **detached** (truncated BPTT: gradients stop at the chunk
boundary, the state's values do not).

By default it trains on the Python documentation's topic texts that ship with CPython
(``pydoc_data.topics``: real English prose by the Python documentation authors, under the PSF licence);
``--data FILE`` trains on any UTF-8 text. At the end it prints the validation loss next to the text's
unigram character entropy (both in nats per character: a model that learned nothing about context cannot
beat the entropy), samples text, and writes a checkpoint (``.npz``) under ``--out``; ``--resume`` continues
from it.

    python examples/char_lm.py                      # LSTM, CPU, about a minute on 2 cores
    python examples/char_lm.py --cell gru --device cuda --steps 2000
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np

import tinygrad_rnn as tg
from tinygrad_rnn import functional as F
from tinygrad_rnn import nn, optim
from tinygrad_rnn.serialization import load, save

try:
    from tqdm import tqdm
except ImportError:  # the progress bar is optional: pip install tinygrad_rnn[examples]
    tqdm = None

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
SAVED_SETTINGS = ("cell", "embed_size", "hidden_size", "num_layers")  # stored in the checkpoint


# ----------------------------------------------------------------------------------------------- data


def default_text() -> tuple[str, str]:
    """The Python documentation's topic texts (``pydoc_data.topics``), shipped with CPython."""
    try:
        from pydoc_data.topics import topics
    except ImportError as exc:  # some minimal Python builds leave it out
        raise SystemExit(f"pydoc_data is not available in this Python ({exc}); pass --data FILE") from exc
    return "\n\n".join(topics[key] for key in sorted(topics)), "pydoc_data.topics (Python documentation, PSF licence)"


def unigram_entropy(ids: np.ndarray, vocab_size: int) -> float:
    """Entropy of the character frequencies, ``-Σ p log p``, in nats per character."""
    p = np.bincount(ids, minlength=vocab_size) / len(ids)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def batchify(ids: np.ndarray, batch_size: int) -> np.ndarray:
    """Cut ``ids`` into ``batch_size`` contiguous streams: (batch_size, N // batch_size)."""
    n = len(ids) // batch_size
    return ids[: n * batch_size].reshape(batch_size, n)


# ----------------------------------------------------------------------------------------------- model


class CharLM(nn.Module):
    """``Embedding(V, E) -> {RNN, LSTM, GRU}(E, H, num_layers) -> Linear(H, V)``, time-major."""

    def __init__(self, vocab_size: int, embed_size: int, hidden_size: int, num_layers: int, cell: str,
                 device: str):
        super().__init__()
        self.cell = cell
        self.embed = nn.Embedding(vocab_size, embed_size, device=device)
        self.rnn = CELLS[cell](embed_size, hidden_size, num_layers=num_layers, device=device)
        self.head = nn.Linear(hidden_size, vocab_size, device=device)

    def forward(self, ids: tg.Tensor, state=None):
        """ids (T, B) int -> logits (T, B, V) and the final recurrent state."""
        out, state = self.rnn(self.embed(ids), state)
        return self.head(out), state


def detach_state(state):
    """Cut the tape at a chunk boundary (truncated BPTT): same values, no history."""
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


def sequence_loss(model: CharLM, x: np.ndarray, y: np.ndarray, state, device: str):
    """Mean cross-entropy (nats/char) of predicting y from x, both (T, B)."""
    logits, state = model(tg.Tensor(x, device=device), state)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tg.Tensor(y.reshape(-1), device=device))
    return loss, state


def evaluate(model: CharLM, streams: np.ndarray, seq_len: int, device: str) -> float:
    """Mean loss over held-out streams (B, N), carrying the state across chunks, without a tape."""
    total, count, state = 0.0, 0, None
    with tg.no_grad():
        for start in range(0, streams.shape[1] - 1, seq_len):
            x = streams[:, start : start + seq_len]
            y = streams[:, start + 1 : start + 1 + seq_len]
            x = x[:, : y.shape[1]]
            loss, state = sequence_loss(model, x.T, y.T, state, device)
            total += loss.item() * y.size
            count += y.size
    return total / count


def sample(model: CharLM, vocab: list[str], prompt: str, length: int, temperature: float, device: str,
           rng: np.random.Generator) -> str:
    """Generate ``length`` characters after ``prompt``, one at a time, from softmax(logits / temperature)."""
    index = {ch: i for i, ch in enumerate(vocab)}
    ids = [index[ch] for ch in prompt if ch in index] or [0]
    out = []
    with tg.no_grad():
        logits, state = model(tg.Tensor(np.array(ids)[:, None], device=device))
        last = logits[-1, 0]
        for _ in range(length):
            logp = tg.log_softmax(last * (1.0 / temperature)).numpy().astype(np.float64)
            p = np.exp(logp - logp.max())
            next_id = int(rng.choice(len(vocab), p=p / p.sum()))
            out.append(vocab[next_id])
            logits, state = model(tg.Tensor(np.array([[next_id]]), device=device), state)
            last = logits[-1, 0]
    return prompt + "".join(out)


# ----------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--cell", choices=sorted(CELLS), default="lstm", help="recurrent layer")
    p.add_argument("--data", help="a UTF-8 text file (default: the Python docs shipped with CPython)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--out", default="runs/char_lm", help="folder for the checkpoint and the sample")
    p.add_argument("--steps", type=int, default=600, help="training steps (chunks)")
    p.add_argument("--batch-size", type=int, default=32, help="parallel streams of text")
    p.add_argument("--seq-len", type=int, default=64, help="truncated-BPTT length (characters per chunk)")
    p.add_argument("--embed-size", type=int, default=32, help="character embedding size")
    p.add_argument("--hidden-size", type=int, default=128, help="recurrent hidden size")
    p.add_argument("--num-layers", type=int, default=1, help="stacked recurrent layers")
    p.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate")
    p.add_argument("--clip", type=float, default=1.0, help="max global gradient norm")
    p.add_argument("--max-chars", type=int, default=0, help="use only the first N characters (0: all)")
    p.add_argument("--sample-len", type=int, default=300, help="characters to sample at the end")
    p.add_argument("--temperature", type=float, default=0.8, help="sampling temperature")
    p.add_argument("--seed", type=int, default=0, help="seed of the initialisation and the sampler")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (log every 100 steps instead)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for name in ("steps", "batch_size", "seq_len", "embed_size", "hidden_size", "num_layers", "sample_len"):
        if getattr(args, name) < (0 if name in ("steps", "sample_len") else 1):
            raise SystemExit(f"char_lm.py: --{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    tg.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    try:
        device = tg.backend.normalize_device(args.device)
    except tg.DeviceError as exc:
        raise SystemExit(f"char_lm.py: {exc}") from None

    if args.data:
        try:
            with open(args.data, encoding="utf-8") as f:
                text, source = f.read(), args.data
        except (OSError, UnicodeDecodeError) as exc:
            raise SystemExit(f"char_lm.py: cannot read --data {args.data}: {exc}") from None
    else:
        text, source = default_text()
    if args.max_chars:
        text = text[: args.max_chars]
    checkpoint = os.path.join(args.out, "checkpoint.npz")
    saved = None
    if args.resume:
        if not os.path.exists(checkpoint):
            raise SystemExit(f"char_lm.py: --resume: no checkpoint at {checkpoint}")
        saved = load(checkpoint)
        for name in SAVED_SETTINGS:  # the architecture comes from the checkpoint
            setattr(args, name, saved[name].item())
    vocab = [chr(c) for c in saved["vocab"]] if saved is not None else sorted(set(text))
    index = {ch: i for i, ch in enumerate(vocab)}
    ids = np.array([index.get(ch, 0) for ch in text], dtype=np.int64)
    split = int(len(ids) * 0.95)
    train, valid = batchify(ids[:split], args.batch_size), batchify(ids[split:], args.batch_size)
    if train.shape[1] <= args.seq_len + 1:
        raise SystemExit(f"the text is too short for batch size {args.batch_size} and seq len {args.seq_len}")
    entropy = unigram_entropy(ids, len(vocab))
    print(f"data: {source}: {len(text):,} characters, vocabulary {len(vocab)}, "
          f"unigram entropy {entropy:.3f} nats/char")

    model = CharLM(len(vocab), args.embed_size, args.hidden_size, args.num_layers, args.cell, device)
    opt = optim.Adam(model.parameters(), lr=args.lr)
    step0 = 0
    if saved is not None:
        model.load_state_dict({k[6:]: v for k, v in saved.items() if k.startswith("model.")})
        opt.load_state_dict({k[6:]: v for k, v in saved.items() if k.startswith("optim.")})
        step0 = int(saved["step"])
        print(f"resumed from {checkpoint} at step {step0}")
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {args.cell.upper()} embed {args.embed_size}, hidden {args.hidden_size} x {args.num_layers} "
          f"layer(s), {n_params:,} parameters, on {device}")

    valid_before = evaluate(model, valid, args.seq_len, device)
    print(f"validation loss before training: {valid_before:.3f} nats/char")
    chunks = (train.shape[1] - 1) // args.seq_len
    state, losses = None, []
    bar = None if (tqdm is None or args.no_progress) else tqdm(total=args.steps, unit="step", dynamic_ncols=True)
    started = time.perf_counter()
    for step in range(step0, step0 + args.steps):
        chunk = step % chunks
        if chunk == 0:
            state = None  # a new pass over the text: start from the zero state
        start = chunk * args.seq_len
        x = train[:, start : start + args.seq_len].T
        y = train[:, start + 1 : start + 1 + args.seq_len].T
        loss, state = sequence_loss(model, x, y, state, device)
        state = detach_state(state)
        opt.zero_grad()
        loss.backward()
        optim.clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        losses.append(loss.item())
        recent = float(np.mean(losses[-50:]))
        if bar is not None:
            bar.set_postfix(loss=f"{recent:.3f}", ppl=f"{math.exp(recent):.2f}")
            bar.update(1)
        elif (step + 1) % 100 == 0:
            print(f"step {step + 1}: loss {recent:.3f} nats/char, perplexity {math.exp(recent):.2f}", flush=True)
    if bar is not None:
        bar.close()
    elapsed = time.perf_counter() - started

    valid_after = evaluate(model, valid, args.seq_len, device)
    if losses:
        n_first, n_last = min(10, len(losses)), min(50, len(losses))
        first, last = float(np.mean(losses[:n_first])), float(np.mean(losses[-n_last:]))
        print(f"\ntrained {args.steps} steps in {elapsed:.1f} s ({1000 * elapsed / args.steps:.0f} ms/step)")
        print(f"train loss: first {n_first} steps {first:.3f}, last {n_last} steps {last:.3f} nats/char "
              f"(perplexity {math.exp(first):.1f} -> {math.exp(last):.1f})")
    print(f"validation loss: {valid_before:.3f} -> {valid_after:.3f} nats/char")
    print(f"unigram character entropy: {entropy:.3f} nats/char "
          f"({'below' if valid_after < entropy else 'NOT below'} it by {entropy - valid_after:.3f})")

    text_out = sample(model.eval(), vocab, "The ", args.sample_len, args.temperature, device, rng)
    print("\nsample:\n" + text_out + "\n")

    os.makedirs(args.out, exist_ok=True)
    state_out = {f"model.{k}": v for k, v in model.state_dict().items()}
    state_out.update({f"optim.{k}": v for k, v in opt.state_dict().items()})
    state_out["vocab"] = np.array([ord(ch) for ch in vocab], dtype=np.int32)
    state_out["step"] = np.array(step0 + args.steps)
    for name in SAVED_SETTINGS:
        state_out[name] = np.array(getattr(args, name))
    save(state_out, checkpoint)
    with open(os.path.join(args.out, "sample.txt"), "w", encoding="utf-8") as f:
        f.write(text_out)
    print(f"checkpoint: {checkpoint}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
