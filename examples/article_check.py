"""The article, checked: the tape's BPTT against the hand-derived formulas, printed as a table.

Same as ``tinygrad-rnn check``; the logic lives in :mod:`tinygrad_rnn.article_check`. Exits non-zero if any
gradient disagrees.

    python examples/article_check.py [--steps 12] [--batch 3] [--seed 0] [--chunk 5] [--out DIR]
"""

import sys

from tinygrad_rnn.article_check import main

if __name__ == "__main__":
    sys.exit(main())
