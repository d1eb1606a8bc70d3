"""``torch.nn.modules.sparse``."""

from tinygrad_rnn.nn.layers import Embedding

__all__ = ["Embedding"]
