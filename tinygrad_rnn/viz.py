"""The tape drawn: the graph behind a tensor as Graphviz DOT text, and that text rendered to SVG or PNG.

:func:`to_dot` walks the tape the way ``backward`` does (from the tensor's ``_ctx`` through each
``Function``'s ``parents``, with an explicit stack, so a 10,000-step tape is fine) and writes one node per
op (its name, output shape and dtype) and one per leaf (named after a Module's parameter when a Module is
given), with edges in the direction data flows. It needs nothing but the package.

Long unrolled sequences repeat the same handful of ops once per time step. With ``collapse`` (on by default
for tapes of more than 150 ops) each such repetition is drawn once, inside a dashed box labelled
"one time step, × T": an edge that ran from step t−1 into step t is drawn dashed and labelled ``t−1 → t``
(the recurrence), and an edge from outside into every step, or from every step out, says how many it
stands for. Only blocks whose wiring is exactly alike are folded, so the picture never hides a difference.

:func:`render` turns the DOT text into an image with the ``graphviz`` Python package and Graphviz's ``dot``
program (``pip install "tinygrad_rnn[viz]"`` and e.g. ``apt-get install graphviz``); without them it raises
an error that says how to get them. Any Graphviz viewer also reads the text of :func:`to_dot` directly, and
in a notebook ``graphviz.Source(to_dot(t))`` displays it.

>>> import tinygrad_rnn as tg
>>> from tinygrad_rnn.viz import to_dot
>>> x = tg.tensor([1.0, 2.0], requires_grad=True)
>>> print(to_dot((x * x).sum(), names={"x": x}), end="")  # doctest: +ELLIPSIS
digraph tape {
...
  leaf0 [label="x\\n(2,) float32", ...];
  op0 [label="mul\\n(2,) float32", ...];
  op1 [label="sum\\n() float32", ...];
  leaf0 -> op0 [label="×2"];
  op0 -> op1;
}
"""

from __future__ import annotations

import os
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from tinygrad_rnn.backend import to_numpy
from tinygrad_rnn.tensor import Function, Tensor

__all__ = ["AUTO_COLLAPSE_OPS", "render", "to_dot"]

AUTO_COLLAPSE_OPS = 150
"""With ``collapse=None``, tapes with more ops than this are folded by time step."""

_RELEASED = (
    "to_dot: the graph behind this tensor was released by backward(); draw it before backward(), or call "
    "backward(retain_graph=True) to keep it (show_grads=True needs the latter)"
)

# colours: parameters blue, other leaves grey, ops white, the output(s) yellow
_PARAM_STYLE = 'shape=box, style="filled", fillcolor="#dbeafe"'
_INPUT_STYLE = 'shape=box, style="filled,dashed", fillcolor="#f3f4f6"'
_OP_STYLE = 'shape=box, style="rounded"'
_ROOT_STYLE = 'shape=box, style="rounded,filled,bold", fillcolor="#fef3c7"'


# --------------------------------------------------------------------------------------------------
# Walking the tape
# --------------------------------------------------------------------------------------------------


def _as_roots(tensor: Any) -> list[Tensor]:
    if isinstance(tensor, Tensor):
        return [tensor]
    if isinstance(tensor, (tuple, list)) and tensor and all(isinstance(t, Tensor) for t in tensor):
        return list(tensor)
    raise TypeError(f"to_dot: expected a Tensor or a non-empty sequence of Tensors, got {type(tensor).__name__}")


def _source(parent: Any) -> tuple[Any, int | None]:
    """(the producing Function or the leaf Tensor, output index or None) of one ``parents`` entry."""
    if isinstance(parent, Tensor):
        return parent, None
    if isinstance(parent, Function):  # a single-output op is its own edge
        return parent, None
    return parent._ctx, parent._index  # an _Edge: one output of a multi-output op


def _collect(roots: list[Tensor]) -> list[Function]:
    """Every Function reachable from ``roots``, in creation order (an explicit stack: no recursion)."""
    found: set[int] = set()
    funcs: list[Function] = []
    stack = [t._ctx for t in roots if t._ctx is not None]
    for fn in stack:
        if id(fn) not in found:
            found.add(id(fn))
            funcs.append(fn)
    stack = list(funcs)
    while stack:
        parents = stack.pop().parents
        if parents is None:
            raise RuntimeError(_RELEASED)
        for parent in parents:
            src, _ = _source(parent)
            if isinstance(src, Function) and id(src) not in found:
                found.add(id(src))
                funcs.append(src)
                stack.append(src)
    funcs.sort(key=lambda f: f.seq)
    return funcs


# --------------------------------------------------------------------------------------------------
# Folding repeated time steps
# --------------------------------------------------------------------------------------------------


class _Run:
    """``count`` consecutive blocks of ``period`` ops (in creation order) starting at ``start``, wired alike."""

    def __init__(self, start: int, period: int, count: int):
        self.start, self.period, self.count = start, period, count

    def block(self, pos: int) -> int | None:
        if self.start <= pos < self.start + self.period * self.count:
            return (pos - self.start) // self.period
        return None


def _signatures(funcs: list[Function]) -> np.ndarray:
    """One integer per op: equal for ops of the same kind, output shape, dtype and number of inputs."""
    codes: dict[Any, int] = {}
    out = np.empty(len(funcs), dtype=np.int64)
    for i, fn in enumerate(funcs):
        key = (fn.name, fn.n_outputs, getattr(fn, "shape", None) if fn.n_outputs == 1 else None,
               getattr(fn, "dtype", None), len(fn.parents))
        out[i] = codes.setdefault(key, len(codes))
    return out


def _repeats(sig: np.ndarray, free: np.ndarray, min_repeats: int, max_period: int) -> list[tuple[int, int, int]]:
    """Tandem repeats among the free ops, as (start, period, count), those covering the most ops first.

    For each period p, positions where ``sig[i] == sig[i + p]`` form runs; a run of length L starting at s is
    a repeat of ``(L + p) // p`` blocks. The blocks are aligned to the run's end (a prologue that ends like
    a step is more common than an epilogue that starts like one). Ties go to the shorter period.
    """
    n = len(sig)
    found: list[tuple[int, int, int, int]] = []  # (covered, -period, start, count)
    for p in range(1, min(max_period, n // min_repeats) + 1):
        eq = (sig[:-p] == sig[p:]) & free[:-p] & free[p:]
        if not eq.any():
            continue
        edges = np.diff(np.concatenate(([0], eq.astype(np.int8), [0])))
        for s, e in zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=False):
            length = e - s
            count = (length + p) // p
            if count >= min_repeats:
                found.append((count * p, -p, s + (length + p - count * p), count))
    found.sort(key=lambda f: (-f[0], -f[1], f[2]))
    return [(start, -neg_p, count) for _, neg_p, start, count in found]


def _fold(funcs: list[Function], min_repeats: int, max_period: int) -> list[_Run]:
    """Runs of identically wired time steps, found greedily (the largest first) among the ops."""
    sig = _signatures(funcs)
    free = np.ones(len(funcs), dtype=bool)
    pos = {id(fn): i for i, fn in enumerate(funcs)}
    spans = _leaf_spans(funcs)
    runs: list[_Run] = []
    while True:
        for start, period, count in _repeats(sig, free, min_repeats, max_period):
            run = _Run(start, period, count)
            run.count = _consistent_blocks(funcs, run, runs, pos, spans)
            if run.count >= min_repeats:
                free[start:start + period * run.count] = False
                runs.append(run)
                break
        else:
            return runs


def _leaf_spans(funcs: list[Function]) -> dict[int, tuple[int, int]]:
    """For each leaf used by the ops, the first and last position (creation order) of an op using it."""
    spans: dict[int, tuple[int, int]] = {}
    for i, fn in enumerate(funcs):
        for parent in fn.parents:
            if isinstance(parent, Tensor):
                first = spans.get(id(parent), (i, i))[0]
                spans[id(parent)] = (first, i)
    return spans


def _describe_parent(parent: Any, slot: int, block: int, run: _Run, runs: list[_Run], pos: dict[int, int],
                     spans: dict[int, tuple[int, int]]) -> tuple[Any, ...]:
    """How the op in ``block`` of ``run`` gets its input ``slot``, relative to its own block."""
    src, index = _source(parent)
    if isinstance(src, Tensor):  # a leaf of this block alone (a constant made in the step), or a shared one
        first, last = spans[id(src)]
        local = run.block(first) is not None and run.block(first) == run.block(last)
        return ("local", slot) if local else ("leaf", id(src))
    p = pos[id(src)]
    b = run.block(p)
    if b is not None:
        return ("in", block - b, (p - run.start) % run.period, index)
    for r, other in enumerate(runs):
        b = other.block(p)
        if b is not None:
            return ("run", r, (p - other.start) % other.period, index)
    return ("out", p)


def _consistent_blocks(funcs: list[Function], run: _Run, runs: list[_Run], pos: dict[int, int],
                       spans: dict[int, tuple[int, int]]) -> int:
    """How many leading blocks of ``run`` are wired exactly like its block 1 (block 0 may take its
    recurrent inputs from anywhere: the initial state); 0 when block 0 differs otherwise."""

    def wiring(block: int) -> list[tuple[Any, ...]]:
        base = run.start + block * run.period
        return [tuple(_describe_parent(parent, s, block, run, runs, pos, spans)
                      for s, parent in enumerate(funcs[base + o].parents)) for o in range(run.period)]

    reference = wiring(1)
    for ref_op, op in zip(reference, wiring(0), strict=False):
        for ref, d in zip(ref_op, op, strict=False):
            if ref != d and not (ref[0] == "in" and ref[1] >= 1):
                return 0
    for block in range(2, run.count):
        if wiring(block) != reference:
            return block
    return run.count


# --------------------------------------------------------------------------------------------------
# DOT text
# --------------------------------------------------------------------------------------------------


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _shape(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(int(s)) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _grad_text(t: Tensor | None) -> str | None:
    if t is None or t.grad is None:
        return None
    g = to_numpy(t.grad.array)
    norm = float(np.sqrt(np.sum(np.square(g, dtype=np.float64))))
    return f"grad {_shape(g.shape)} ‖·‖={norm:.3g}"


def _names(module: Any, names: Mapping[str, Tensor] | None) -> dict[int, str]:
    out: dict[int, str] = {}
    if module is not None:
        if isinstance(module, Mapping):
            items: Iterable[tuple[str, Any]] = module.items()
        elif hasattr(module, "named_parameters"):
            items = list(module.named_parameters())
            if hasattr(module, "named_buffers"):
                items += list(module.named_buffers())
        else:
            raise TypeError(f"to_dot: module must be a Module or a mapping of names to tensors, "
                            f"got {type(module).__name__}")
        for name, t in items:
            if isinstance(t, Tensor):
                out.setdefault(id(t), name)
    for name, t in (names or {}).items():
        if not isinstance(t, Tensor):
            raise TypeError(f"to_dot: names[{name!r}] is a {type(t).__name__}, not a Tensor")
        out[id(t)] = name
    return out


def to_dot(tensor: Tensor | Sequence[Tensor], module: Any = None, show_grads: bool = False,
           collapse: bool | str | None = None, names: Mapping[str, Tensor] | None = None, rankdir: str = "TB",
           min_repeats: int = 3, max_period: int = 64) -> str:
    """The graph behind ``tensor`` as Graphviz DOT text.

    One node per op, labelled with its name (``addmm``, ``split``, ``sigmoid``…), output shape and dtype
    (a multi-output op such as ``split`` says how many outputs it has; each outgoing edge is labelled
    ``[i]``, the output it carries). One node per leaf: named after the parameter when ``module`` or
    ``names`` knows it (e.g. ``weight_hh_l0``), ``leaf`` for other tensors that require a gradient, ``input``
    (dashed) for the rest, and ``const`` with its value for one-element constants. Edges point the way
    data flows, from an op's inputs to the op; an input used k times by one op (``x * x``) is one edge
    labelled ``×k``. The tensor(s) drawn are highlighted. Node ids follow creation order, so the text is the
    same for the same program.

    Args:
        tensor: a Tensor, or a sequence of Tensors drawn together (e.g. ``(h_n, c_n)``).
        module: a Module whose ``named_parameters()`` name the leaves, or a mapping name → Tensor.
        show_grads: add each leaf's gradient (shape and Euclidean norm) after ``backward()``, and the
            gradient of every tensor that called ``retain_grad()``. The graph must still exist: call
            ``backward(retain_graph=True)`` first.
        collapse: True folds repeated time steps onto one drawn step (see the module docstring); False
            draws every op as it is; ``"steps"`` draws every op too, each time step in its own box
            ("step 2 of 3"); None (default) folds only tapes with more than :data:`AUTO_COLLAPSE_OPS` ops.
        names: extra leaf names, name → Tensor (they win over the module's).
        rankdir: Graphviz's layout direction, ``"TB"`` (top to bottom) or ``"LR"``.
        min_repeats: the fewest identical consecutive steps worth folding.
        max_period: the most ops one folded step may have.

    Returns:
        The DOT text (``digraph tape { ... }``).

    Raises:
        RuntimeError: the graph was released by ``backward()`` (see ``retain_graph``).
        TypeError: ``tensor`` is not a Tensor or a sequence of them; ``module``/``names`` of the wrong kind.
        ValueError: ``rankdir`` is not one of TB, LR, BT, RL; ``collapse`` is not one of None, True, False,
            "steps"; ``min_repeats`` < 2 or ``max_period`` < 1.
    """
    roots = _as_roots(tensor)
    if rankdir not in ("TB", "LR", "BT", "RL"):
        raise ValueError(f"to_dot: rankdir must be 'TB', 'LR', 'BT' or 'RL', got {rankdir!r}")
    if min_repeats < 2 or max_period < 1:
        raise ValueError(f"to_dot: need min_repeats >= 2 and max_period >= 1, got {min_repeats} and {max_period}")
    leaf_names = _names(module, names)
    funcs = _collect(roots)
    if collapse not in (None, True, False, "steps"):
        raise ValueError(f"to_dot: collapse must be None, True, False or 'steps', got {collapse!r}")
    if collapse is None:
        collapse = len(funcs) > AUTO_COLLAPSE_OPS
    runs = _fold(funcs, min_repeats, max_period) if collapse and funcs else []
    return _Drawing(funcs, roots, runs, leaf_names, show_grads, boxes=collapse == "steps").dot(rankdir)


class _Drawing:
    """The nodes and edges drawn for a tape, after folding ``runs`` onto their first block."""

    def __init__(self, funcs: list[Function], roots: list[Tensor], runs: list[_Run], leaf_names: dict[int, str],
                 show_grads: bool, boxes: bool = False):
        self.funcs, self.runs, self.leaf_names, self.show_grads = funcs, runs, leaf_names, show_grads
        self.boxes = boxes  # draw every step in its own box instead of folding them onto one
        self.pos = {id(fn): i for i, fn in enumerate(funcs)}
        # where[i]: (run, block) of the op at position i when it is folded; rep[i]: the op drawn for it
        self.where: list[tuple[int, int] | None] = [None] * len(funcs)
        self.rep = list(range(len(funcs)))
        for r, run in enumerate(runs):
            for i in range(run.start, run.start + run.period * run.count):
                self.where[i] = (r, (i - run.start) // run.period)
                if not boxes:
                    self.rep[i] = run.start + (i - run.start) % run.period

        # leaves, in order of first use, and where they are used
        self.leaves: dict[int, Tensor] = {}
        uses: dict[int, list[Any]] = defaultdict(list)
        for i, fn in enumerate(funcs):
            for parent in fn.parents:
                if isinstance(parent, Tensor):
                    self.leaves.setdefault(id(parent), parent)
                    uses[id(parent)].append(self.where[i] or ("op", i))
        for t in roots:
            if t._ctx is None:
                self.leaves.setdefault(id(t), t)
        # a leaf used by one folded block only (a constant made inside the step) lives in that block: it is
        # drawn inside the box, as the leaf at the same place of block 0 (or of block 1, when block 0 takes
        # its state from outside)
        self.home: dict[int, tuple[int, int]] = {k: u[0] for k, u in uses.items()
                                                  if len(set(map(str, u))) == 1 and u[0][0] != "op"}
        for i, fn in enumerate(funcs):  # block 0's leaves where block 1 has an op (the initial state) stay out
            w = self.where[i]
            if w is None or w[1] != 0:
                continue
            run = runs[w[0]]
            later = funcs[i + run.period].parents
            for parent, other in zip(fn.parents, later, strict=False):
                if isinstance(parent, Tensor) and not isinstance(other, Tensor):
                    self.home.pop(id(parent), None)
        self.leaf_rep = {k: k for k in self.leaves}
        for i, fn in enumerate(funcs):
            w = self.where[i]
            if w is None or w[1] == 0 or boxes:
                continue
            run = runs[w[0]]
            offset = (i - run.start) % run.period
            for s, parent in enumerate(fn.parents):
                if not isinstance(parent, Tensor) or self.home.get(id(parent)) != w:
                    continue
                for b in (0, 1):
                    other = funcs[run.start + b * run.period + offset].parents[s]
                    if isinstance(other, Tensor) and self.home.get(id(other)) == (w[0], b):
                        self.leaf_rep[id(parent)] = self.leaf_rep[id(other)]
                        break
        self.leaf_ids: dict[int, str] = {}
        for k in self.leaves:
            if self.leaf_rep[k] == k:
                self.leaf_ids[k] = f"leaf{len(self.leaf_ids)}"

        self.root_ops = {self.rep[self.pos[id(t._ctx)]] for t in roots if t._ctx is not None}
        self.root_leaves = {self.leaf_rep[id(t)] for t in roots if t._ctx is None}

    # ---------------------------------------------------------------- nodes
    def leaf_line(self, k: int, indent: str) -> str:
        t = self.leaves[k]
        name = self.leaf_names.get(k)
        what = f"{_shape(t.shape)} {t.dtype}"
        if name is not None:
            label, style = f"{name}\n{what}", _PARAM_STYLE if t.requires_grad else _INPUT_STYLE
        elif t.requires_grad:
            label, style = f"leaf\n{what}", _PARAM_STYLE
        elif t.array.size == 1:
            value = to_numpy(t.array).reshape(()).item()
            label, style = (f"const {value:.6g}" if isinstance(value, float) else f"const {value}"), _INPUT_STYLE
            label += f"\n{what}"
        else:
            label, style = f"input\n{what}", _INPUT_STYLE
        if self.show_grads and t.requires_grad:
            label += "\n" + (_grad_text(t) or "grad None")
        if k in self.root_leaves:
            style = _ROOT_STYLE
        return f"{indent}{self.leaf_ids[k]} [label={_quote(label)}, {style}];"

    def op_line(self, i: int, indent: str) -> str:
        fn = self.funcs[i]
        if fn.n_outputs == 1:
            label = f"{fn.name}\n{_shape(fn.shape)} {fn.dtype}"
        else:
            label = f"{fn.name}\n{fn.n_outputs} outputs"
        if self.show_grads:
            for index, ref in sorted((fn.retained or {}).items()):
                text = _grad_text(ref())
                if text:
                    label += "\n" + (text if fn.n_outputs == 1 else f"[{index}] {text}")
        style = _ROOT_STYLE if i in self.root_ops else _OP_STYLE
        return f"{indent}op{i} [label={_quote(label)}, {style}];"

    # ---------------------------------------------------------------- edges
    def edges(self) -> list[str]:
        """Every recorded input, mapped onto the drawn nodes; edges that map onto one are merged."""
        merged: dict[tuple[str, str, str], list[tuple[Any, Any, int | None]]] = {}
        for i, fn in enumerate(self.funcs):
            dst_where = None if self.boxes else self.where[i]
            for parent in fn.parents:
                src, index = _source(parent)
                if isinstance(src, Tensor):
                    k = self.leaf_rep[id(src)]
                    name = self.leaf_ids[k]
                    src_where = dst_where if id(src) in self.home else None
                else:
                    j = self.pos[id(src)]
                    name, src_where = f"op{self.rep[j]}", None if self.boxes else self.where[j]
                if src_where is not None and dst_where is not None and src_where[0] == dst_where[0]:
                    delta = dst_where[1] - src_where[1]
                    kind = "plain" if delta == 0 else f"rec{delta}"
                elif dst_where is not None:
                    kind = "in"
                elif src_where is not None:
                    kind = "out"
                else:
                    kind = "plain"
                tag = "" if index is None or kind == "in" else f"[{index}]"
                merged.setdefault((name, f"op{self.rep[i]}", kind + tag), []).append((src_where, dst_where, index))
        lines = []
        for (src, dst, kind_tag), hits in merged.items():
            kind, _, tag = kind_tag.partition("[")
            tag = f"[{tag}" if tag else ""
            attrs = []
            if kind == "plain":  # inside a folded block: count one block's worth
                n = sum(1 for _, d, _ in hits if d is None or d[1] == 0)
                label = " ".join(filter(None, [tag, f"×{n}" if n > 1 else ""]))
            elif kind.startswith("rec"):
                delta = int(kind[3:])
                label = " ".join(filter(None, [tag, "t−1 → t" if delta == 1 else f"t−{delta} → t"]))
                attrs.append('style=dashed, color="#b45309", fontcolor="#b45309", constraint=false')
            elif kind == "in":
                indices = [ix for _, _, ix in hits if ix is not None]
                blocks = {d[1] for _, d, _ in hits}
                if len(hits) == 1:
                    text = f"step {hits[0][1][1] + 1}"
                    if indices:
                        text = f"[{indices[0]}] " + text
                elif indices and len(set(indices)) > 1:
                    text = f"[{indices[0]}…{indices[-1]}], one per step"
                else:
                    text = f"×{len(hits)}" + (f" [{indices[0]}]" if indices else "")
                    if len(blocks) == 1:
                        text += f" into step {next(iter(blocks)) + 1}"
                label = text
            else:  # "out": from folded steps to an op outside them
                count = self.runs[hits[0][0][0]].count
                steps = sorted({s[1] for s, _, _ in hits})
                if len(hits) == 1:
                    text = f"step {steps[0] + 1} of {count}"
                elif steps == list(range(count)) and len(hits) == count:
                    text = f"×{count}, one per step"
                else:
                    text = f"×{len(hits)}"
                label = " ".join(filter(None, [tag, text]))
            if label:
                attrs.insert(0, f"label={_quote(label)}")
            lines.append(f"  {src} -> {dst}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";")
        return lines

    # ---------------------------------------------------------------- the whole text
    def dot(self, rankdir: str) -> str:
        lines = ["digraph tape {",
                 f'  graph [rankdir={rankdir}, fontname="Helvetica", fontsize=11, nodesep=0.25, ranksep=0.3];',
                 '  node [fontname="Helvetica", fontsize=10, height=0.3];',
                 '  edge [fontname="Helvetica", fontsize=9, arrowsize=0.6];']
        inside: set[int] = set()
        for r, run in enumerate(self.runs if self.boxes else ()):
            for b in range(run.count):
                lines.append(f"  subgraph cluster_step{r}_{b} {{")
                lines.append(f"    label={_quote(f'step {b + 1} of {run.count}')};")
                lines.append('    style="dashed,rounded"; color="#6b7280"; fontsize=11;')
                for k in self.leaf_ids:
                    if self.home.get(k) == (r, b):
                        lines.append(self.leaf_line(k, "    "))
                        inside.add(k)
                start = run.start + b * run.period
                lines.extend(self.op_line(i, "    ") for i in range(start, start + run.period))
                lines.append("  }")
        for r, run in enumerate(() if self.boxes else self.runs):
            lines.append(f"  subgraph cluster_step{r} {{")
            lines.append(f"    label={_quote(f'one time step, × {run.count} (steps 2–{run.count} repeat it)')};")
            lines.append('    style="dashed,rounded"; color="#6b7280"; fontsize=11;')
            for k in self.leaf_ids:
                if self.home.get(k, (None,))[0] == r:
                    lines.append(self.leaf_line(k, "    "))
                    inside.add(k)
            lines.extend(self.op_line(i, "    ") for i in range(run.start, run.start + run.period))
            lines.append("  }")
        lines.extend(self.leaf_line(k, "  ") for k in self.leaf_ids if k not in inside)
        lines.extend(self.op_line(i, "  ") for i in range(len(self.funcs)) if self.where[i] is None)
        lines.extend(self.edges())
        lines.append("}")
        return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------------

_HOW_TO_GET_GRAPHVIZ = (
    "install the Python package with `pip install \"tinygrad_rnn[viz]\"` (or `pip install graphviz`) and "
    "Graphviz's `dot` program: `apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` (macOS), "
    "`conda install graphviz`, or https://graphviz.org/download/. Without them, save the text of to_dot() "
    "to a .dot file and open it in any Graphviz viewer"
)


def render(dot_or_tensor: str | Tensor | Sequence[Tensor], path: str | os.PathLike[str], format: str = "svg",
           **to_dot_options: Any) -> str:
    """Render DOT text (or the tape behind a tensor, through :func:`to_dot`) to an image file.

    Args:
        dot_or_tensor: DOT text, or a Tensor / sequence of Tensors to draw.
        path: the file to write (its extension is not changed); written atomically.
        format: an output format of Graphviz's ``dot``: ``"svg"`` (default), ``"png"``, ``"pdf"``…
        **to_dot_options: passed to :func:`to_dot` when a tensor is given (``module=``, ``collapse=``…).

    Returns:
        ``str(path)``.

    Raises:
        ImportError: the ``graphviz`` Python package is missing (the message says how to install it).
        RuntimeError: Graphviz's ``dot`` program is missing or failed (the message says how to get it).
    """
    dot = dot_or_tensor if isinstance(dot_or_tensor, str) else to_dot(dot_or_tensor, **to_dot_options)
    try:
        import graphviz
    except ImportError as exc:
        raise ImportError(f"render() needs the graphviz Python package: {_HOW_TO_GET_GRAPHVIZ}") from exc
    try:
        image = graphviz.Source(dot).pipe(format=format)
    except graphviz.ExecutableNotFound as exc:
        raise RuntimeError(f"render() needs Graphviz's `dot` program on the PATH: {_HOW_TO_GET_GRAPHVIZ}") from exc
    except graphviz.CalledProcessError as exc:
        raise RuntimeError(f"render(): Graphviz's dot failed on this graph (format {format!r}): {exc}") from exc
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".render-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(image)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private; give it the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
