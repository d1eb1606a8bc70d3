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

__all__ = ["example_parser", "ExampleParser", "usage_error", "setup", "positive_int", "non_negative_int", "positive_float", "set_threads",
           "StopRequests", "explicit_options"]

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


def example_parser(doc: str | None, *, out: str, seed: int = 0, prog: str | None = None) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` with the common options: ``--device``, ``--seed``, ``--out``, ``--threads``.

    ``doc`` is the script's docstring: its first paragraph becomes the description.
    """
    description = (doc or "").strip().split("\n\n")[0]
    parser = ExampleParser(prog=prog, description=description, formatter_class=_HelpFormatter)
    common = parser.add_argument_group("common options (every example)")
    common.add_argument("--device", default="cpu", help="where tensors live: cpu, cuda or cuda:N")
    common.add_argument("--seed", type=int, default=seed, help="seed of the initialisation, data order and sampling")
    common.add_argument("--out", default=out, help="folder for the outputs (checkpoint, figures, tables)")
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

    def __enter__(self) -> "StopRequests":
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handler)
        except ValueError:  # not the main thread
            pass
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
