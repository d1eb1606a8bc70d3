"""The command-line convention every example (and ``tinygrad-rnn check``) follows.

Every script takes ``--device cpu|cuda[:N]``, ``--seed``, ``--out DIR`` and ``--threads N``, shows each
option's default in ``--help``, and answers a bad option or an unusable device with one line and exit
code 2 (argparse's convention), never a traceback. Each example still reads top to bottom on its own: this
module only builds the parser's common part and applies it.

    parser = example_parser(__doc__, out="runs/my_example")
    parser.add_argument("--hidden-size", type=int, default=32, help="recurrent hidden size")
    args = parser.parse_args(argv)
    device = setup(parser, args)          # checks the device and --out, sets BLAS threads, seeds

Interrupts: :class:`StopRequests` turns Ctrl-C and SIGTERM into a flag that a training loop checks after
each complete step, so it writes its checkpoint and exits cleanly (``kill`` included).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
from typing import Any, NoReturn

from tinygrad_rnn.backend import DeviceError, normalize_device
from tinygrad_rnn.tensor import manual_seed

__all__ = ["add_checkpoint_options", "RunCheckpoint", "example_parser", "ExampleParser", "usage_error", "setup",
           "positive_int", "non_negative_int", "positive_float", "set_threads", "StopRequests", "explicit_options"]

DEFAULT_THREADS = 1


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows every option's default and keeps the description's line breaks."""


class ExampleParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (``PROG: error: MESSAGE``) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        usage_error(self.prog, message)


def usage_error(prog: str, message: str) -> NoReturn:
    """Print ``PROG: error: MESSAGE (see PROG --help)`` on stderr and exit with code 2 (a usage error)."""
    print(f"{prog}: error: {message} (see {prog} --help)", file=sys.stderr)
    raise SystemExit(2)


def _checked(kind: type, test: Any, expected: str) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not test(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    parse.__name__ = expected  # argparse names the type in its message
    return parse


positive_int = _checked(int, lambda v: v >= 1, "an integer >= 1")
non_negative_int = _checked(int, lambda v: v >= 0, "an integer >= 0")
positive_float = _checked(float, lambda v: v > 0 and v != float("inf"), "a finite number > 0")


def example_parser(doc: str | None, *, out: str | None, seed: int = 0, prog: str | None = None,
                   out_help: str = "folder for the outputs (checkpoint, figures, tables)",
                   seed_help: str = "seed of the initialisation, data order and sampling") -> argparse.ArgumentParser:
    """An ``ArgumentParser`` with the common options: ``--device``, ``--seed``, ``--out``, ``--threads``.

    ``doc`` is the script's docstring: its first paragraph becomes the description. ``out=None`` makes
    ``--out`` optional (nothing is written without it).
    """
    description = (doc or "").strip().split("\n\n")[0]
    parser = ExampleParser(prog=prog, description=description, formatter_class=_HelpFormatter)
    common = parser.add_argument_group("common options (every example)")
    common.add_argument("--device", default="cpu", help="where tensors live: cpu, cuda or cuda:N")
    common.add_argument("--seed", type=int, default=seed, help=seed_help)
    common.add_argument("--out", default=out, help=out_help)
    common.add_argument("--threads", type=positive_int, default=DEFAULT_THREADS,
                        help="BLAS threads; more than one only pays for large matrices on an idle machine "
                             "(on a busy machine extra threads can make small steps ~100x slower)")
    return parser


def set_threads(n: int) -> bool:
    """Limit NumPy's BLAS (and OpenMP) thread pools to ``n`` threads; False if threadpoolctl is missing."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return False
    threadpool_limits(limits=n)
    return True


def _check_out(parser: argparse.ArgumentParser, out: str) -> None:
    """``--out`` is (or can become) a writable folder: create it and write a probe file."""
    try:
        os.makedirs(out, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".probe-"):
            pass
    except OSError as exc:
        parser.error(f"--out {out}: not a writable folder ({exc.strerror or exc})")


def setup(parser: argparse.ArgumentParser, args: argparse.Namespace, *, need_out: bool = True) -> str:
    """Apply the common options: returns the normalized device.

    Checks the device (CUDA needs CuPy and a GPU) and that ``--out`` is writable before any work starts,
    sets the BLAS threads and seeds :func:`tinygrad_rnn.manual_seed`. A problem exits with one line and
    code 2 (``parser.error``).
    """
    try:
        device = normalize_device(args.device)
    except DeviceError as exc:
        parser.error(f"--device {args.device}: {exc}")
    if need_out:
        _check_out(parser, args.out)
    if not set_threads(args.threads) and args.threads != DEFAULT_THREADS:
        parser.error("--threads needs threadpoolctl: pip install threadpoolctl (part of the [examples] extra)")
    manual_seed(args.seed)
    return device


def explicit_options(parser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """The destinations of the options the user typed in ``argv`` (not those left at their defaults)."""
    typed = {token.split("=", 1)[0] for token in argv if token.startswith("-")}
    return {action.dest for action in parser._actions if typed.intersection(action.option_strings)}


class StopRequests:
    """Ctrl-C and SIGTERM as a request to stop at the next safe point, not an exception mid-update.

    Inside ``with StopRequests() as stop:``, the first SIGINT or SIGTERM sets ``stop.requested``; the
    training loop checks it after each complete step (so parameters, optimizer state and carried state are
    never half-updated), writes its checkpoint and exits. A second Ctrl-C raises ``KeyboardInterrupt`` at
    once, for a loop that does not stop. Outside the main thread (no signal handlers) it does nothing.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handler(self, signum: int, frame: Any) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> StopRequests:
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handler)
        except ValueError:  # not the main thread
            pass
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)


def add_checkpoint_options(parser: argparse.ArgumentParser, *, every: int, unit: str) -> None:
    """``--save-every N`` (``unit``s), ``--resume`` and ``--overwrite``, with the same meaning everywhere."""
    group = parser.add_argument_group("checkpoints")
    group.add_argument("--save-every", type=non_negative_int, default=every,
                       help=f"write the checkpoint every N {unit} (0: only at the end and on Ctrl-C/SIGTERM)")
    group.add_argument("--resume", action="store_true", help="continue the run whose checkpoint is in --out")
    group.add_argument("--overwrite", action="store_true", help="replace an existing checkpoint in --out")


class RunCheckpoint:
    """A training run's checkpoint file, with the resume rules every example shares.

    * Without ``--resume`` an existing checkpoint is never replaced silently (``--overwrite`` says to).
    * With ``--resume``, the ``settings`` (option names) come from the checkpoint; one the user typed with
      another value is refused, naming both values. A checkpoint of another format is refused.
    * :meth:`save` writes atomically with :func:`tinygrad_rnn.save` (any nesting of state dicts, arrays and
      numbers) and adds the format and the settings; a write error is one line, not a traceback.
    """

    def __init__(self, parser: argparse.ArgumentParser, args: argparse.Namespace, argv: list[str], name: str,
                 settings: tuple[str, ...], fmt: int = 1):
        self.prog, self.args, self.settings, self.format = parser.prog, args, settings, fmt
        self.path = os.path.join(args.out, name)
        self.typed = explicit_options(parser, argv)
        if not args.resume and os.path.exists(self.path) and not args.overwrite:
            usage_error(self.prog, f"{self.path} exists; pass --resume to continue that run, --overwrite to "
                                   "replace it, or another --out")

    def load(self) -> dict[str, Any] | None:
        """The saved run when resuming (after adopting its settings into ``args``), else None."""
        from tinygrad_rnn.serialization import load

        if not self.args.resume:
            return None
        if not os.path.exists(self.path):
            usage_error(self.prog, f"--resume: no checkpoint at {self.path}")
        try:
            saved = load(self.path)
        except Exception as exc:  # a truncated or foreign file
            usage_error(self.prog, f"--resume: cannot read {self.path}: {exc}")
        version = saved.get("format") if isinstance(saved, dict) else None
        if version != self.format:
            usage_error(self.prog, f"--resume: {self.path} has checkpoint format {version}, this script reads "
                                   f"format {self.format}; start a new run with another --out")
        for name in self.settings:
            value = saved["settings"][name]
            if name in self.typed and getattr(self.args, name) != value:
                flag = "--" + name.replace("_", "-")
                usage_error(self.prog, f"--resume: {flag} {getattr(self.args, name)} contradicts the checkpoint's "
                                       f"{flag} {value}; leave it out to continue that run, or use another --out")
            setattr(self.args, name, value)
        return saved

    def save(self, run: dict[str, Any]) -> None:
        """Write ``run`` (a dict of state dicts, arrays, numbers) with the format and the settings."""
        from tinygrad_rnn.serialization import save

        out = {"format": self.format, "settings": {name: getattr(self.args, name) for name in self.settings}}
        out.update(run)
        try:
            save(out, self.path)
        except OSError as exc:
            raise SystemExit(f"{self.prog}: cannot write the checkpoint {self.path}: {exc}") from None
