"""Command line: ``tinygrad-rnn check`` (or ``python -m tinygrad_rnn check``)."""

from __future__ import annotations

import sys

USAGE = """usage: tinygrad-rnn COMMAND [options]

commands:
  check    compare the tape's gradients with the article's hand-derived BPTT
           and with finite differences, as a table (tinygrad-rnn check --help)
"""


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a subcommand; returns the process exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, end="", file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "check":
        from tinygrad_rnn.article_check import main as check

        return check(rest, prog="tinygrad-rnn check")
    print(f"tinygrad-rnn: error: unknown command {command!r} (see tinygrad-rnn --help)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
