"""Run one kept PyTorch program under torch (its original imports) or tinygrad_rnn (as kept), for the tests.

    python driver.py --framework torch|tinygrad --program DIR/FILE.py --rundir TMP --out result.json
                     [--record draws.npz | --replay draws.npz] [--float64] -- program args...

The program's folder is copied into ``--rundir`` (for torch with every ``tinygrad_rnn`` in an import line turned
back into ``torch``: the original program) and run there as ``__main__`` with ``sys.argv`` = its args.

Same initial weights: under torch (``--record``) every random draw the program makes through torch
(``Tensor.uniform_``/``normal_``, which every ``nn`` init uses, and ``randperm``, which ``random_split`` uses)
is recorded in order with its kind, bounds and shape; under tinygrad_rnn (``--replay``) the project's generator
is replaced by one that hands out exactly those values, in that order, and raises if the program asks for a
draw of another kind, shape or law. Python's ``random`` and NumPy's global generator are seeded alike.

Losses: every call of an ``MSELoss``/``NLLLoss`` module is recorded (``loss.item()``), in order, into the
JSON result together with the program's wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import runpy
import sys
import time

import numpy as np

IMPORT_LINE = re.compile(r"^(\s*)(import|from)\s+tinygrad_rnn\b(.*)$")


def to_torch(source: str) -> str:
    """The original program: ``tinygrad_rnn`` back to ``torch`` in import lines (nothing else differs)."""
    out = []
    for line in source.splitlines(keepends=True):
        m = IMPORT_LINE.match(line)
        if m:
            line = line.replace("import tinygrad_rnn as torch", "import torch").replace("tinygrad_rnn", "torch")
        out.append(line)
    return "".join(out)


def copy_program(program: str, rundir: str, framework: str) -> str:
    folder = os.path.dirname(os.path.abspath(program))
    os.makedirs(rundir, exist_ok=True)
    for name in os.listdir(folder):
        if name.endswith(".py"):
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                text = f.read()
            with open(os.path.join(rundir, name), "w", encoding="utf-8") as f:
                f.write(to_torch(text) if framework == "torch" else text)
    return os.path.join(rundir, os.path.basename(program))


class Recorder:
    """Wraps torch's draw functions; ``draws`` is the ordered list of (kind, a, b, values)."""

    def __init__(self, torch):
        self.draws: list[tuple[str, float, float, np.ndarray]] = []
        rec = self
        uniform, normal = torch.Tensor.uniform_, torch.Tensor.normal_

        def uniform_(self, a=0.0, b=1.0, *args, **kw):
            out = uniform(self, a, b, *args, **kw)
            rec.draws.append(("uniform", float(a), float(b), self.detach().cpu().double().numpy().copy()))
            return out

        def normal_(self, mean=0.0, std=1.0, *args, **kw):
            out = normal(self, mean, std, *args, **kw)
            rec.draws.append(("normal", float(mean), float(std), self.detach().cpu().double().numpy().copy()))
            return out

        from torch.utils.data import dataset
        randperm = torch.randperm

        def randperm_(n, *args, **kw):
            out = randperm(n, *args, **kw)
            rec.draws.append(("permutation", 0.0, float(n), out.cpu().numpy().copy()))
            return out

        torch.Tensor.uniform_, torch.Tensor.normal_ = uniform_, normal_
        torch.randperm = dataset.randperm = randperm_

    def save(self, path: str) -> None:
        arrays = {f"d{i}": v for i, (_, _, _, v) in enumerate(self.draws)}
        meta = [(k, a, b) for k, a, b, _ in self.draws]
        np.savez(path, meta=np.array(json.dumps(meta)), **arrays)


class Replay:
    """A stand-in for the project's ``numpy.random.Generator`` that hands out torch's recorded draws."""

    def __init__(self, path: str):
        with np.load(path) as z:
            meta = json.loads(str(z["meta"]))
            self.draws = [(k, a, b, z[f"d{i}"]) for i, (k, a, b) in enumerate(meta)]
        self.used = 0

    def _next(self, kind: str, a: float, b: float, shape: tuple[int, ...]) -> np.ndarray:
        if self.used >= len(self.draws):
            raise RuntimeError(f"replay: the program asked for draw #{self.used} ({kind} {shape}); torch made "
                               f"only {len(self.draws)}")
        k, ra, rb, values = self.draws[self.used]
        if k != kind or values.shape != shape or not np.allclose([ra, rb], [a, b], rtol=1e-12, atol=0):
            raise RuntimeError(f"replay: draw #{self.used} is {kind}({a}, {b}) of shape {shape} here but "
                               f"{k}({ra}, {rb}) of shape {values.shape} under torch")
        self.used += 1
        return values.copy()

    @staticmethod
    def _shape(size) -> tuple[int, ...]:
        return () if size is None else (int(size),) if np.isscalar(size) else tuple(int(s) for s in size)

    def uniform(self, low=0.0, high=1.0, size=None):
        return self._next("uniform", low, high, self._shape(size))

    def normal(self, loc=0.0, scale=1.0, size=None):
        return self._next("normal", loc, scale, self._shape(size))

    def standard_normal(self, size=None, dtype=np.float64):
        return self._next("normal", 0.0, 1.0, self._shape(size)).astype(dtype)

    def permutation(self, n):
        return self._next("permutation", 0.0, float(n), (int(n),))

    def integers(self, *args, **kw):
        raise RuntimeError("replay: integers() draws are not recorded from torch")


class Pinned(dict):
    """The project's per-device generators, with the CPU one pinned (``manual_seed`` clears the others)."""

    def clear(self) -> None:
        cpu = self["cpu"]
        super().clear()
        self["cpu"] = cpu


def record_losses(nn, losses: list[float]) -> None:
    for cls in (nn.MSELoss, nn.NLLLoss):
        forward = cls.forward

        def wrapped(self, *args, _forward=forward, **kw):
            loss = _forward(self, *args, **kw)
            losses.append(float(loss.item()))
            return loss

        cls.forward = wrapped


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--framework", choices=["torch", "tinygrad"], required=True)
    p.add_argument("--program", required=True)
    p.add_argument("--rundir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--record")
    p.add_argument("--replay")
    p.add_argument("--float64", action="store_true")
    p.add_argument("args", nargs="*")
    opts = p.parse_args()

    try:
        import matplotlib

        matplotlib.use("Agg")  # the programs that plot write files, never open windows
    except ImportError:
        pass
    random.seed(0)
    np.random.seed(0)
    losses: list[float] = []
    recorder = None
    if opts.framework == "torch":
        import torch
        import torch.nn

        torch.set_num_threads(1)
        torch.manual_seed(0)
        if opts.float64:
            torch.set_default_dtype(torch.float64)
        # torch.load's weights_only default refuses NumPy arrays (time_sequence_prediction reads one)
        torch.serialization.add_safe_globals([np._core.multiarray._reconstruct, np.ndarray, np.dtype,
                                              type(np.dtype(np.float64))])
        if opts.record:
            recorder = Recorder(torch)
        record_losses(torch.nn, losses)
    else:
        import tinygrad_rnn as tg
        import tinygrad_rnn.nn
        import tinygrad_rnn.utils.data

        tg.manual_seed(0)
        if opts.float64:
            tg.set_default_dtype(tg.float64)
        if opts.replay:
            replay = Replay(opts.replay)
            sys.modules["tinygrad_rnn.tensor"]._generators.by_device = Pinned(cpu=replay)
            sys.modules["tinygrad_rnn.utils.data"]._generator = lambda generator: replay
        record_losses(tinygrad_rnn.nn, losses)

    script = copy_program(opts.program, opts.rundir, opts.framework)
    os.chdir(opts.rundir)
    sys.path.insert(0, opts.rundir)
    sys.argv = [script, *opts.args]
    start = time.perf_counter()
    try:
        runpy.run_path(script, run_name="__main__")
    finally:
        wall = time.perf_counter() - start
        if recorder is not None:
            recorder.save(opts.record)
        result = {"losses": losses, "wall_s": wall}
        if opts.framework == "tinygrad" and opts.replay:
            result["draws_used"] = replay.used
            result["draws_recorded"] = len(replay.draws)
        with open(opts.out, "w") as f:
            json.dump(result, f)


if __name__ == "__main__":
    main()
