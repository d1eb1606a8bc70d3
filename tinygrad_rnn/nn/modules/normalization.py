"""``torch.nn.modules.normalization``: LayerNorm."""

from tinygrad_rnn.nn.more_layers import LayerNorm

__all__ = ["LayerNorm"]
