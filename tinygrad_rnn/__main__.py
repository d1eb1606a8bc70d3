"""Command line: ``tinygrad-rnn check`` (or ``python -m tinygrad_rnn check``).

Subcommands:
    check   the tape's gradients against the article's hand-derived BPTT (see :mod:`tinygrad_rnn.article_check`)
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a subcommand; returns the process exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "check":
        from tinygrad_rnn.article_check import main as check

        return check(rest, prog="tinygrad-rnn check")
    print(f"tinygrad-rnn: unknown command {command!r}\n{__doc__}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
