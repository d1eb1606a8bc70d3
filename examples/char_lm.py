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
    mpiexec -n 2 python examples/char_lm.py --distributed   # data-parallel on 2 ranks (the [mpi] extra)

With ``--distributed`` every rank trains on its own streams of the batch (``--batch-size`` is the global
batch), the gradients are averaged over the ranks before clipping and the step, and rank 0 alone reads the
data and checkpoint, prints, samples and writes the checkpoint (the same file a one-process run writes).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time

import numpy as np

import tinygrad_rnn as tg
from tinygrad_rnn import functional as F
from tinygrad_rnn import nn, optim
from tinygrad_rnn.cli import (
    StopRequests,
    example_parser,
    explicit_options,
    non_negative_int,
    positive_float,
    positive_int,
    setup,
    usage_error,
)
from tinygrad_rnn.serialization import load, save

try:
    from tqdm import tqdm
except ImportError:  # the progress bar is optional: pip install tinygrad_rnn[examples]
    tqdm = None

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
SAVED_SETTINGS = ("cell", "embed_size", "hidden_size", "num_layers", "batch_size", "seq_len", "lr", "clip")


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
            if temperature == 0:  # greedy: the most likely character
                next_id = int(last.numpy().argmax())
            else:
                logp = tg.log_softmax(last * (1.0 / temperature)).numpy().astype(np.float64)
                p = np.exp(logp - logp.max())
                next_id = int(rng.choice(len(vocab), p=p / p.sum()))
            out.append(vocab[next_id])
            logits, state = model(tg.Tensor(np.array([[next_id]]), device=device), state)
            last = logits[-1, 0]
    return prompt + "".join(out)


# ----------------------------------------------------------------------------------------------- main

CHECKPOINT_FORMAT = 2  # 2: also the carried state, the losses, the generators and the data's hash


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, set[str]]:
    """The options, and which of them the user typed (``--resume`` refuses typed ones that contradict)."""
    p = example_parser(__doc__, out="runs/char_lm")
    p.add_argument("--cell", choices=sorted(CELLS), default="lstm", help="recurrent layer")
    p.add_argument("--data", default=None,
                   help="a UTF-8 text file; by default the Python documentation shipped with CPython")
    p.add_argument("--steps", type=non_negative_int, default=600, help="training steps (chunks) to run now")
    p.add_argument("--batch-size", type=positive_int, default=32, help="parallel streams of text")
    p.add_argument("--seq-len", type=positive_int, default=64, help="truncated-BPTT length (characters per chunk)")
    p.add_argument("--embed-size", type=positive_int, default=32, help="character embedding size")
    p.add_argument("--hidden-size", type=positive_int, default=128, help="recurrent hidden size")
    p.add_argument("--num-layers", type=positive_int, default=1, help="stacked recurrent layers")
    p.add_argument("--lr", type=positive_float, default=3e-3, help="Adam learning rate")
    p.add_argument("--clip", type=positive_float, default=1.0, help="max global gradient norm")
    p.add_argument("--max-chars", type=non_negative_int, default=0, help="use only the first N characters (0: all)")
    p.add_argument("--sample-len", type=non_negative_int, default=300, help="characters to sample at the end")
    p.add_argument("--temperature", type=float, default=0.8,
                   help="sampling temperature (0: always the most likely character)")
    p.add_argument("--save-every", type=non_negative_int, default=100,
                   help="write the checkpoint every N steps (0: only at the end and on Ctrl-C/SIGTERM)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    p.add_argument("--overwrite", action="store_true", help="replace an existing checkpoint in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (log every 100 steps instead)")
    p.add_argument("--eager", action="store_true",
                   help="run each training step on the tape instead of replaying a captured one (tinygrad_rnn.capture)")
    p.add_argument("--distributed", action="store_true",
                   help="data-parallel over MPI ranks: launch with mpiexec -n N (needs the [mpi] extra)")
    args = p.parse_args(argv)
    if not args.temperature >= 0 or args.temperature == float("inf"):
        p.error(f"--temperature: expected a finite number >= 0, got {args.temperature}")
    args.device = setup(p, args)
    return args, explicit_options(p, argv)


def read_text(args: argparse.Namespace) -> tuple[str, str]:
    """The training text and a name for its source; exits with one line when --data cannot be used."""
    if args.data:
        try:
            with open(args.data, encoding="utf-8") as f:
                text, source = f.read(), args.data
        except (OSError, UnicodeDecodeError) as exc:
            usage_error("char_lm.py", f"cannot read --data {args.data}: {exc}")
    else:
        text, source = default_text()
    if args.max_chars:
        text = text[: args.max_chars]
    return text, source


def read_checkpoint(path: str) -> dict:
    if not os.path.exists(path):
        usage_error("char_lm.py", f"--resume: no checkpoint at {path}")
    try:
        return load(path)
    except Exception as exc:  # a truncated or foreign file
        usage_error("char_lm.py", f"--resume: cannot read {path}: {exc}")


def load_checkpoint(path: str, args: argparse.Namespace, typed: set[str], text_hash: str, on_main) -> dict:
    """The saved run; refuses one that does not match the options the user typed or the data."""
    saved = on_main(read_checkpoint, path)
    version = int(saved["format"]) if "format" in saved else 1
    if version != CHECKPOINT_FORMAT:
        usage_error("char_lm.py", f"--resume: {path} has checkpoint format {version}, this script reads "
                         f"format {CHECKPOINT_FORMAT}; start a new run with another --out")
    if str(saved["data_sha256"]) != text_hash:
        usage_error("char_lm.py", f"--resume: the text differs from the one {path} was trained on "
                         "(other --data or --max-chars); resume with the same text or start a new run")
    for name in SAVED_SETTINGS:
        value = saved[name].item()
        if name in typed and getattr(args, name) != value:
            flag = "--" + name.replace("_", "-")
            usage_error("char_lm.py", f"--resume: {flag} {getattr(args, name)} contradicts the checkpoint's "
                             f"{flag} {value}; leave it out to continue that run, or start a new one in another --out")
        setattr(args, name, value)  # the run's settings come from the checkpoint
    return saved


def flatten_optim_state(opt: optim.Optimizer) -> dict[str, object]:
    """The optimizer's per-parameter state as flat ``optim.state.{index}.{name}`` entries (for the .npz)."""
    return {f"optim.state.{i}.{name}": value
            for i, state in opt.state_dict()["state"].items() for name, value in state.items()}


def unflatten_optim_state(opt: optim.Optimizer, saved: dict[str, object]) -> dict[str, object]:
    """The inverse of :func:`flatten_optim_state`: a state dict for ``opt.load_state_dict`` (groups: ``opt``'s)."""
    state_dict = opt.state_dict()
    state_dict["state"] = {}
    for key, value in saved.items():
        if key.startswith("optim.state."):
            index, name = key[len("optim.state."):].split(".", 1)
            state_dict["state"].setdefault(int(index), {})[name] = value
    return state_dict


def checkpoint_dict(model, opt, args, vocab, step, state, losses, text_hash) -> dict:
    """Everything a bit-identical continuation needs: weights, Adam's moments, the carried (detached)
    recurrent state, the step (which fixes the data position), the losses so far, the generators' states."""
    out = {f"model.{k}": v for k, v in model.state_dict().items()}
    out.update(flatten_optim_state(opt))
    states = () if state is None else state if isinstance(state, tuple) else (state,)
    for i, s in enumerate(states):
        out[f"carried.{i}"] = s
    out["vocab"] = np.array([ord(ch) for ch in vocab], dtype=np.int32)
    out["step"] = np.array(step)
    out["losses"] = np.array(losses, dtype=np.float64)
    out["rng"] = np.array(json.dumps(tg.default_rng(args.device).bit_generator.state))
    out["data_sha256"] = np.array(text_hash)
    out["format"] = np.array(CHECKPOINT_FORMAT)
    for name in SAVED_SETTINGS:
        out[name] = np.array(getattr(args, name))
    return out


def start_distributed(args: argparse.Namespace):
    """Join the MPI job (``--distributed``): rank 0 alone prints; with ``--device cuda`` each rank on its GPU."""
    try:
        import tinygrad_rnn.distributed as dist

        _, world = dist.init()
    except ImportError as exc:
        usage_error("char_lm.py", f"--distributed: {exc}")
    if args.batch_size < world:
        usage_error("char_lm.py", f"--distributed: --batch-size {args.batch_size} is less than the {world} ranks")
    if args.device.startswith("cuda"):
        args.device = dist.device_for_rank("cuda")
    if not dist.is_main():
        sys.stdout, args.no_progress = open(os.devnull, "w"), True  # noqa: SIM115
    return dist


def gather_state(dist, state):
    """The carried state of every rank's streams, in stream order, on rank 0 (None on the others)."""
    if state is None:
        return None
    parts = tuple(dist.gather(s, dim=1) for s in (state if isinstance(state, tuple) else (state,)))
    return parts if isinstance(state, tuple) else parts[0]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args, typed = parse_args(argv)
    dist = start_distributed(args) if args.distributed else None
    on_main = (lambda fn, *a: fn(*a)) if dist is None else dist.on_main  # what rank 0 alone does, for all
    device = args.device
    rng = np.random.default_rng(args.seed)
    text, source = on_main(read_text, args)
    text_hash = hashlib.sha256(text.encode("utf-8")).hexdigest()
    checkpoint = os.path.join(args.out, "checkpoint.npz")
    saved = None
    if args.resume:
        saved = load_checkpoint(checkpoint, args, typed, text_hash, on_main)
    elif on_main(os.path.exists, checkpoint) and not args.overwrite:
        usage_error("char_lm.py", f"{checkpoint} exists; pass --resume to continue that run, --overwrite to "
                         "replace it, or another --out")
    vocab = [chr(c) for c in saved["vocab"]] if saved is not None else sorted(set(text))
    index = {ch: i for i, ch in enumerate(vocab)}
    ids = np.array([index[ch] for ch in text], dtype=np.int64)
    split = int(len(ids) * 0.95)
    train, valid = batchify(ids[:split], args.batch_size), batchify(ids[split:], args.batch_size)
    if train.shape[1] <= args.seq_len + 1 or valid.shape[1] < 2:
        usage_error("char_lm.py", f"the text ({len(text):,} characters) is too short for --batch-size "
                         f"{args.batch_size} and --seq-len {args.seq_len}")
    if dist is not None:  # this rank's streams (rows) of the global batch
        train, valid = dist.shard(train), dist.shard(valid)
        print(f"distributed: {dist.get_world_size()} ranks, {train.shape[0]} of {args.batch_size} streams each")
    entropy = unigram_entropy(ids, len(vocab))
    print(f"data: {source}: {len(text):,} characters, vocabulary {len(vocab)}, "
          f"unigram entropy {entropy:.3f} nats/char")

    model = CharLM(len(vocab), args.embed_size, args.hidden_size, args.num_layers, args.cell, device)
    opt = optim.Adam(model.parameters(), lr=args.lr)
    step0, state, losses = 0, None, []
    if saved is not None:
        model.load_state_dict({k[6:]: v for k, v in saved.items() if k.startswith("model.")})
        opt.load_state_dict(unflatten_optim_state(opt, saved))
        step0 = int(saved["step"])
        losses = [float(v) for v in saved["losses"]]
        carried = [tg.Tensor(saved[k] if dist is None else dist.shard(saved[k], dim=1), device=device)
                   for k in sorted(k for k in saved if k.startswith("carried."))]
        state = None if not carried else tuple(carried) if len(carried) > 1 else carried[0]
        tg.default_rng(device).bit_generator.state = json.loads(str(saved["rng"]))
        print(f"resumed from {checkpoint} at step {step0}")
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {args.cell.upper()} embed {args.embed_size}, hidden {args.hidden_size} x {args.num_layers} "
          f"layer(s), {n_params:,} parameters, on {device}")

    def write_checkpoint(step: int) -> None:
        whole = state if dist is None else gather_state(dist, state)  # (rank 0: the state of all streams)

        def write() -> None:
            try:
                save(checkpoint_dict(model, opt, args, vocab, step, whole, losses, text_hash), checkpoint)
            except OSError as exc:
                raise SystemExit(f"char_lm.py: cannot write the checkpoint {checkpoint}: {exc}") from None

        on_main(write)

    def validate() -> float:  # with --distributed, the mean over all ranks' validation streams
        loss = evaluate(model, valid, args.seq_len, device)
        return loss if dist is None else dist.allreduce(loss, op="mean", weight=valid.size)

    if dist is not None:
        dist.broadcast_parameters(model)  # every rank starts from rank 0's weights
    valid_before = validate()
    print(f"validation loss before training: {valid_before:.3f} nats/char")
    chunks = (train.shape[1] - 1) // args.seq_len

    def loss_backward(xt: tg.Tensor, yt: tg.Tensor, state):
        """Forward, loss and backward of one chunk: recorded at its first call, then replayed (tg.capture)."""
        logits, new_state = model(xt, state)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), yt)
        loss.backward()
        return loss, new_state

    train_step = loss_backward if args.eager else tg.capture(loss_backward)
    bar = None if (tqdm is None or args.no_progress) else tqdm(total=args.steps, unit="step", dynamic_ncols=True)
    started = time.perf_counter()
    step = step0
    with StopRequests() as stop:
        def stopping() -> bool:  # Ctrl-C/SIGTERM on any rank stops all ranks at the same step
            return stop.requested if dist is None else bool(dist.allreduce(int(stop.requested), op="max"))

        while step < step0 + args.steps and not stopping():
            chunk = step % chunks
            if chunk == 0:
                state = None  # a new pass over the text: start from the zero state
            start = chunk * args.seq_len
            x = train[:, start : start + args.seq_len].T
            y = train[:, start + 1 : start + 1 + args.seq_len].T
            opt.zero_grad()
            loss, new_state = train_step(tg.Tensor(x, device=device), tg.Tensor(y.reshape(-1), device=device), state)
            if dist is not None:  # the global batch's gradient on every rank, before clipping sees its norm
                dist.allreduce_gradients(model.parameters(), weight=y.size)
            optim.clip_grad_norm_(model.parameters(), args.clip)
            opt.step()
            state = detach_state(new_state)
            losses.append(loss.item() if dist is None else dist.allreduce(loss.item(), op="mean", weight=y.size))
            step += 1
            recent = float(np.mean(losses[-50:]))
            if bar is not None:
                bar.set_postfix(loss=f"{recent:.3f}", ppl=f"{math.exp(recent):.2f}")
                bar.update(1)
            elif step % 100 == 0:
                print(f"step {step}: loss {recent:.3f} nats/char, perplexity {math.exp(recent):.2f}", flush=True)
            if args.save_every and (step - step0) % args.save_every == 0:
                write_checkpoint(step)
    if bar is not None:
        bar.close()
    write_checkpoint(step)
    if step < step0 + args.steps:
        print(f"\nstopped at step {step} (Ctrl-C or SIGTERM); checkpoint written to {checkpoint}.\n"
              f"Continue with the same options plus: --resume --steps {step0 + args.steps - step}", file=sys.stderr)
        return 130
    elapsed = time.perf_counter() - started

    valid_after = validate()
    if losses:
        n_first, n_last = min(10, len(losses)), min(50, len(losses))
        first, last = float(np.mean(losses[:n_first])), float(np.mean(losses[-n_last:]))
        if args.steps:
            print(f"\ntrained {args.steps} steps in {elapsed:.1f} s ({1000 * elapsed / args.steps:.0f} ms/step)")
        print(f"train loss: first {n_first} steps {first:.3f}, last {n_last} steps {last:.3f} nats/char "
              f"(perplexity {math.exp(first):.1f} -> {math.exp(last):.1f})")
    print(f"validation loss: {valid_before:.3f} -> {valid_after:.3f} nats/char")
    gap = entropy - valid_after
    print(f"unigram character entropy: {entropy:.3f} nats/char "
          + (f"(the model is {gap:.3f} below it)" if gap > 0 else f"(the model is {-gap:.3f} above it: "
             "it has not yet learned more than the character frequencies)"))

    if dist is not None and not dist.is_main():
        return 0  # rank 0 samples
    text_out = sample(model.eval(), vocab, "The ", args.sample_len, args.temperature, device, rng)
    print("\nsample:\n" + text_out + "\n")
    try:
        with open(os.path.join(args.out, "sample.txt"), "w", encoding="utf-8") as f:
            f.write(text_out)
    except OSError as exc:
        raise SystemExit(f"char_lm.py: cannot write the sample to {args.out}: {exc}") from None
    print(f"checkpoint: {checkpoint}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
