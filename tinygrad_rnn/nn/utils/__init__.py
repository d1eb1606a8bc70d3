"""Utilities for ``nn``: packed sequences (:mod:`tinygrad_rnn.nn.utils.rnn`)."""

from tinygrad_rnn.nn.utils import rnn

__all__ = ["rnn"]
