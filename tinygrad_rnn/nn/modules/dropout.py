"""``torch.nn.modules.dropout``."""

from tinygrad_rnn.nn.layers import Dropout

__all__ = ["Dropout"]
