"""``torch.nn.modules.module``."""

from tinygrad_rnn.nn.module import Module

__all__ = ["Module"]
