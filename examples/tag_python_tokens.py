"""Tag every character of a line of Python with its token type, with a bidirectional LSTM.

The data is real code that ships with Python: the standard library's ``json``, ``email`` and ``asyncio``
packages (``--packages``; found with ``os.path.dirname(module.__file__)``). The labels come from Python's own
``tokenize`` module, run over each **whole file** (so a line inside a triple-quoted string is labelled
STRING, which tokenizing the line alone would get wrong) and mapped from token spans onto the characters of
each line. Six tags: ``N`` NAME (keywords included), ``O`` OP, ``9`` NUMBER, ``S`` STRING (f-strings whole),
``C`` COMMENT, and ``.`` for whitespace and anything else.

The model sees one line at a time, as characters: ``Embedding -> LSTM(bidirectional=True, batch_first=True)
-> Linear``, one tag per character. Lines have different lengths; each batch is padded with
``nn.pad_sequences`` and the LSTM gets ``lengths=``, so the reverse direction starts at each line's own end;
``F.cross_entropy(..., ignore_index=-100)`` skips the padding. Batches hold lines of similar length (less
padding, same result).

Why both directions: the right context decides many characters. A string prefix (``f"``, ``rb'``) is a NAME
until the quote after it appears; ``.5`` is a NUMBER but ``.x`` an OP; and whether ``Return the object.`` is
code or a line of a docstring shows only at the end of the line. ``--compare`` also trains a left-to-right
LSTM of the same hidden size on the same batches. Accuracy is per character on held-out files (every
``--test-every``-th file, never seen in training), next to the majority-class baseline, with a per-tag
breakdown and a few tagged test lines (tags under the code, ``^`` under mistakes). Some characters stay
ambiguous to any per-line model: a line such as ``>>> json.dumps(x)`` inside a docstring is a STRING.

    python examples/tag_python_tokens.py                   # bidirectional LSTM, CPU, about a minute on 2 cores
    python examples/tag_python_tokens.py --compare         # and a unidirectional one (twice the time)
    python examples/tag_python_tokens.py --packages json email asyncio unittest --epochs 5 --device cuda

Writes ``metrics.json``, ``tagged.txt`` (the example lines) and ``tagger.npz`` (the weights) under ``--out``.
"""

from __future__ import annotations

import argparse
import glob
import importlib
import io
import json
import os
import sys
import time
import tokenize

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
)
from tinygrad_rnn.serialization import save

try:
    from tqdm import tqdm
except ImportError:  # the progress bar is optional: pip install tinygrad_rnn[examples]
    tqdm = None

TAGS = ".NO9SC"  # index -> letter: other, NAME, OP, NUMBER, STRING, COMMENT
TAG_NAMES = ["other", "NAME", "OP", "NUMBER", "STRING", "COMMENT"]
OTHER, NAME, OP, NUMBER, STRING, COMMENT = range(6)
TOKEN_TAGS = {tokenize.NAME: NAME, tokenize.OP: OP, tokenize.NUMBER: NUMBER, tokenize.STRING: STRING,
              tokenize.COMMENT: COMMENT}
FSTRING_START = getattr(tokenize, "FSTRING_START", None)  # Python >= 3.12 splits f-strings into tokens
FSTRING_END = getattr(tokenize, "FSTRING_END", None)
PAD = -100  # the target at padded positions: ignored by the loss


# ----------------------------------------------------------------------------------------------- data


def tag_source(source: str) -> list[tuple[str, list[int]]]:
    """Tokenize a whole file and return ``(line, tags)`` for each line: one tag per character.

    Token positions are (row, column) in characters; a token may span lines (a docstring), so its span is
    painted onto every line it covers. An f-string is painted STRING as a whole, on every Python version.
    """
    lines = source.splitlines()
    tags = [[OTHER] * len(line) for line in lines]

    def paint(start: tuple[int, int], end: tuple[int, int], tag: int) -> None:
        (r0, c0), (r1, c1) = start, end
        for row in range(r0, r1 + 1):
            if row - 1 >= len(tags):
                break
            line_tags = tags[row - 1]
            lo = c0 if row == r0 else 0
            hi = c1 if row == r1 else len(line_tags)
            line_tags[lo:hi] = [tag] * (min(hi, len(line_tags)) - lo)

    fstrings = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == FSTRING_START:
            fstrings.append(tok.start)
        elif tok.type == FSTRING_END:
            paint(fstrings.pop(), tok.end, STRING)
        elif tok.type in TOKEN_TAGS:
            paint(tok.start, tok.end, TOKEN_TAGS[tok.type])
    return list(zip(lines, tags, strict=False))


def load_files(packages: list[str]) -> list[tuple[str, list[tuple[str, list[int]]]]]:
    """``(path, tagged lines)`` for every ``*.py`` file directly inside each package's directory."""
    files = []
    for name in packages:
        directory = os.path.dirname(importlib.import_module(name).__file__)
        for path in sorted(glob.glob(os.path.join(directory, "*.py"))):
            with open(path, encoding="utf-8") as f:
                source = f.read()
            try:
                files.append((os.path.join(name, os.path.basename(path)), tag_source(source)))
            except (tokenize.TokenError, SyntaxError) as exc:  # not expected in the standard library
                print(f"skipping {path}: {exc}", file=sys.stderr)
    return files


def encode(lines: list[tuple[str, list[int]]], index: dict[str, int], max_len: int):
    """Non-blank lines as (char ids, tags) arrays, cut to ``max_len``; id 0 is padding, 1 unknown."""
    out = []
    for line, tags in lines:
        if line.strip():
            line, tags = line[:max_len], tags[:max_len]
            out.append((np.array([index.get(ch, 1) for ch in line]), np.array(tags), line))
    return out


def batches(examples: list, batch_size: int, rng: np.random.Generator | None):
    """Batches of lines of similar length (sorted by length, then cut); shuffled when ``rng`` is given."""
    order = sorted(range(len(examples)), key=lambda i: len(examples[i][0]))
    groups = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if rng is not None:
        rng.shuffle(groups)
    return [[examples[i] for i in g] for g in groups]


# ----------------------------------------------------------------------------------------------- model


class Tagger(nn.Module):
    """``Embedding(V, E) -> LSTM(E, H, bidirectional) -> Linear(D·H, 6)``: (B, T) ids -> (B, T, 6) logits."""

    def __init__(self, vocab_size: int, embed_size: int, hidden_size: int, bidirectional: bool, device: str):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_size, device=device)
        self.lstm = nn.LSTM(embed_size, hidden_size, batch_first=True, bidirectional=bidirectional, device=device)
        self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), len(TAGS), device=device)

    def forward(self, ids: tg.Tensor, lengths: np.ndarray) -> tg.Tensor:
        out, _ = self.lstm(self.embed(ids), lengths=lengths)
        return self.head(out)


BUCKET = 16  # batches are padded to a multiple of 16 steps: few distinct shapes, so a captured step replays


def padded(batch: list, device: str):
    """Pad one batch: ids (B, T) with 0, targets (B, T) with PAD, and the lengths (B,); T a multiple of BUCKET."""
    ids, lengths = nn.pad_sequences([ex[0] for ex in batch], batch_first=True, padding_value=0, device=device)
    targets, _ = nn.pad_sequences([ex[1] for ex in batch], batch_first=True, padding_value=PAD, device=device)
    extra = -ids.shape[1] % BUCKET
    if extra:
        ids = tg.cat([ids, tg.zeros((ids.shape[0], extra), dtype=ids.dtype, device=device)], 1)
        targets = tg.cat([targets, tg.full((targets.shape[0], extra), PAD, dtype=targets.dtype, device=device)], 1)
    return ids, targets, lengths


def batch_loss(model: Tagger, batch: list, device: str) -> tg.Tensor:
    ids, targets, lengths = padded(batch, device)
    logits = model(ids, lengths)
    return F.cross_entropy(logits.reshape(-1, len(TAGS)), targets.reshape(-1), ignore_index=PAD)


def predict(model: Tagger, examples: list, batch_size: int, device: str) -> list[np.ndarray]:
    """The predicted tags of every example, in the examples' order."""
    preds = {}
    with tg.no_grad():
        for batch in batches(examples, batch_size, None):
            ids, _, lengths = padded(batch, device)
            tags = model(ids, lengths).numpy().argmax(-1)
            for ex, row, n in zip(batch, tags, lengths, strict=False):
                preds[id(ex)] = row[:n]
    return [preds[id(ex)] for ex in examples]


def train(model: Tagger, examples: list, args, device: str, label: str, run: dict, save_run, stop) -> float | None:
    """Train on a fixed plan of batches; returns the seconds taken, or None when Ctrl-C/SIGTERM stopped it.

    ``run`` is the run's checkpoint dict: when it holds this model's partial training (``--resume``), training
    continues from its step with its weights, Adam's moments and losses. ``save_run()`` writes the checkpoint.
    """
    opt = optim.Adam(model.parameters(), lr=args.lr)
    rng = np.random.default_rng(args.seed)
    plan = [b for _ in range(args.epochs) for b in batches(examples, args.batch_size, rng)]
    if args.max_steps:
        plan = plan[: args.max_steps]
    step0, losses = 0, []
    if run.get("current") == label:
        model.load_state_dict(run["model"])
        opt.load_state_dict(run["optim"])
        step0, losses = run["step"], list(run["losses"])
        print(f"{label}: resumed at batch {step0}/{len(plan)}")
    bar = None if (tqdm is None or args.no_progress) else tqdm(total=len(plan), initial=step0, desc=label,
                                                               unit="batch", dynamic_ncols=True)

    def checkpoint(step: int) -> None:
        run.update(current=label, step=step, model=model.state_dict(), optim=opt.state_dict(), losses=losses)
        save_run()

    def loss_backward(ids: tg.Tensor, targets: tg.Tensor, lengths: np.ndarray) -> tg.Tensor:
        """Forward, loss and backward of one batch: recorded once per shape, then replayed (tg.capture)."""
        logits = model(ids, lengths)
        loss = F.cross_entropy(logits.reshape(-1, len(TAGS)), targets.reshape(-1), ignore_index=PAD)
        loss.backward()
        return loss

    train_step = loss_backward if args.eager else tg.capture(loss_backward, cache_size=32)
    started = time.perf_counter()
    for step in range(step0, len(plan)):
        opt.zero_grad()
        loss = train_step(*padded(plan[step], device))
        optim.clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        losses.append(loss.item())
        if bar is not None:
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
            bar.update(1)
        elif (step + 1) % 100 == 0:
            print(f"{label} step {step + 1}/{len(plan)}: loss {np.mean(losses[-50:]):.3f}", flush=True)
        if stop.requested and step + 1 < len(plan):
            checkpoint(step + 1)
            return None
        if args.save_every and (step + 1) % args.save_every == 0:
            checkpoint(step + 1)
    if bar is not None:
        bar.close()
    elapsed = time.perf_counter() - started
    print(f"{label}: {len(plan)} batches in {elapsed:.1f} s, loss {np.mean(losses[:20]):.3f} -> "
          f"{np.mean(losses[-50:]):.3f}")
    return elapsed


# ----------------------------------------------------------------------------------------------- report


def accuracy(examples: list, preds: list[np.ndarray]) -> tuple[float, dict[str, float]]:
    """Overall per-character accuracy, and the accuracy on the characters of each true tag."""
    truth = np.concatenate([ex[1] for ex in examples])
    guess = np.concatenate(preds)
    per_tag = {TAG_NAMES[t]: float((guess[truth == t] == t).mean()) for t in range(len(TAGS)) if (truth == t).any()}
    return float((guess == truth).mean()), per_tag


def show(ex, preds: dict[str, np.ndarray]) -> str:
    """The line (without its indentation), the true tags, and each model's tags with ``^`` under mistakes."""
    line, truth = ex[2], ex[1]
    skip = len(line) - len(line.lstrip())
    rows = [f"  {'code':<7s}{line[skip:]}", f"  {'truth':<7s}{''.join(TAGS[t] for t in truth[skip:])}"]
    for label, pred in preds.items():
        rows.append(f"  {label[:5]:<7s}{''.join(TAGS[t] for t in pred[skip:])}")
        marks = "".join("^" if p != t else " " for p, t in zip(pred[skip:], truth[skip:], strict=False)).rstrip()
        if marks:
            rows.append(f"  {'':<7s}{marks}")
    return "\n".join(rows)


SETTINGS = ("packages", "test_every", "max_len", "max_lines", "embed_size", "hidden_size", "epochs", "max_steps",
            "batch_size", "lr", "clip", "compare", "seed")  # a resumed run keeps the plan it started with


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = example_parser(__doc__, out="runs/tag_python_tokens")
    p.add_argument("--packages", nargs="+", default=["json", "email", "asyncio"],
                   help="standard-library packages whose *.py files are the data")
    p.add_argument("--test-every", type=positive_int, default=5, help="hold out every N-th file (sorted by name)")
    p.add_argument("--max-len", type=positive_int, default=100, help="cut lines to this many characters")
    p.add_argument("--max-lines", type=non_negative_int, default=4000, help="train on at most this many lines (0: all)")
    p.add_argument("--embed-size", type=positive_int, default=16, help="character embedding size")
    p.add_argument("--hidden-size", type=positive_int, default=32, help="LSTM hidden size per direction")
    p.add_argument("--epochs", type=non_negative_int, default=2, help="passes over the training lines")
    p.add_argument("--max-steps", type=non_negative_int, default=0, help="stop after this many batches (0: no limit)")
    p.add_argument("--batch-size", type=positive_int, default=32, help="lines per training step")
    p.add_argument("--lr", type=positive_float, default=1e-2, help="Adam learning rate")
    p.add_argument("--clip", type=positive_float, default=1.0, help="max global gradient norm")
    p.add_argument("--compare", action="store_true", help="also train a unidirectional LSTM of the same size")
    p.add_argument("--show", type=non_negative_int, default=6, help="tagged test lines to print")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (log every 100 batches instead)")
    add_checkpoint_options(p, every=100, unit="batches")
    p.add_argument("--eager", action="store_true",
                   help="run each training step on the tape instead of replaying a captured one (tinygrad_rnn.capture)")
    args = p.parse_args(argv)
    args.device = setup(p, args)
    args.checkpoint = RunCheckpoint(p, args, argv, "checkpoint.npz", SETTINGS)
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    run = args.checkpoint.load() or {"done": {}}  # --resume: the settings come from the checkpoint
    device = args.device
    rng = np.random.default_rng(args.seed)

    files = load_files(args.packages)
    held_out = [(i + 1) % args.test_every == 0 for i in range(len(files))]
    test_files = [f for f, out in zip(files, held_out, strict=False) if out]
    train_files = [f for f, out in zip(files, held_out, strict=False) if not out]
    vocab = sorted({ch for _, lines in train_files for line, _ in lines for ch in line})
    index = {ch: i + 2 for i, ch in enumerate(vocab)}  # 0: padding, 1: unknown
    train_ex = encode([ln for _, lines in train_files for ln in lines], index, args.max_len)
    test_ex = encode([ln for _, lines in test_files for ln in lines], index, args.max_len)
    if args.max_lines and len(train_ex) > args.max_lines:
        train_ex = [train_ex[i] for i in sorted(rng.choice(len(train_ex), args.max_lines, replace=False))]
    counts = np.bincount(np.concatenate([ex[1] for ex in train_ex]), minlength=len(TAGS))
    majority = int(counts.argmax())
    test_truth = np.concatenate([ex[1] for ex in test_ex])
    print(f"data: {len(files)} files of {', '.join(args.packages)} (Python {sys.version.split()[0]}); "
          f"train {len(train_files)} files, {len(train_ex):,} lines, {counts.sum():,} characters; "
          f"test {len(test_files)} files, {len(test_ex):,} lines, {len(test_truth):,} characters; "
          f"{len(vocab)} distinct characters")
    print("train tag frequencies: " + ", ".join(f"{TAGS[t]} {TAG_NAMES[t]} {c / counts.sum():.1%}"
                                                for t, c in enumerate(counts)))

    results = {"majority": {"accuracy": float((test_truth == majority).mean()), "tag": TAG_NAMES[majority]}}
    models = [("bidirectional", True)] + ([("unidirectional", False)] if args.compare else [])
    preds = {}
    def save_run() -> None:
        args.checkpoint.save(run)

    for label, bidirectional in models:
        tg.manual_seed(args.seed)
        model = Tagger(len(vocab) + 2, args.embed_size, args.hidden_size, bidirectional, device)
        n_params = sum(p.numel() for p in model.parameters())
        print(f"\n{label} LSTM: embed {args.embed_size}, hidden {args.hidden_size} per direction, "
              f"{n_params:,} parameters, on {device}")
        if label in run["done"]:  # trained before the run was resumed
            model.load_state_dict(run["done"][label]["model"])
            seconds = run["done"][label]["seconds"]
            print(f"{label}: trained before --resume ({seconds:.1f} s)")
        else:
            with StopRequests() as stop:
                seconds = train(model, train_ex, args, device, label, run, save_run, stop)
            if seconds is None:
                print(f"\nstopped (Ctrl-C or SIGTERM); checkpoint written to {args.checkpoint.path}.\n"
                      "Continue with the same options plus: --resume", file=sys.stderr)
                return 130
            run["done"][label] = {"model": model.state_dict(), "seconds": seconds}
            for key in ("current", "step", "model", "optim", "losses"):
                run.pop(key, None)
            save_run()
        preds[label] = predict(model.eval(), test_ex, args.batch_size, device)
        acc, per_tag = accuracy(test_ex, preds[label])
        results[label] = {"accuracy": acc, "per_tag": per_tag, "parameters": n_params, "train_seconds": seconds}
        if bidirectional:
            save(model.state_dict(), os.path.join(args.out, "tagger.npz"))

    print(f"\nper-character accuracy on the held-out files ({len(test_truth):,} characters):")
    print(f"  {'majority class (' + results['majority']['tag'] + ')':<28s} {results['majority']['accuracy']:.1%}")
    for label, _ in models:
        r = results[label]
        tags = "  ".join(f"{k} {v:.1%}" for k, v in r["per_tag"].items())
        print(f"  {label + ' LSTM':<28s} {r['accuracy']:.1%}   per tag: {tags}")

    # A few test lines with at least three kinds of token; first those the unidirectional model gets wrong
    # and the bidirectional one right, when both were trained.
    rich = [i for i, ex in enumerate(test_ex) if len(set(ex[1].tolist()) - {OTHER}) >= 3]
    errors = {label: [bool((p[i] != test_ex[i][1]).any()) for i in range(len(test_ex))] for label, p in preds.items()}
    wins = [i for i in rich if "unidirectional" in errors and errors["unidirectional"][i]
            and not errors["bidirectional"][i]]
    pick_rng = np.random.default_rng(args.seed + 1)
    picks = list(pick_rng.permutation(wins)[: args.show // 2]) if wins else []
    rest = [i for i in rich if i not in picks]
    picks += list(pick_rng.permutation(rest)[: max(args.show - len(picks), 0)])
    lines = [f"tags: {'  '.join(f'{t} {n}' for t, n in zip(TAGS, TAG_NAMES, strict=False))}; ^ marks a mistake"]
    for i in picks:
        lines.append(show(test_ex[i], {label: p[i] for label, p in preds.items()}) + "\n")
    text = "\n".join(lines)
    print("\n" + text)

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "tagged.txt"), "w", encoding="utf-8") as f:
        f.write(text + "\n")
    with open(os.path.join(args.out, "metrics.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    print(f"\nartefacts: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
