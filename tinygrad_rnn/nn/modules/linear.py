"""``torch.nn.modules.linear``."""

from tinygrad_rnn.nn.layers import Flatten, Identity, Linear

__all__ = ["Flatten", "Identity", "Linear"]
