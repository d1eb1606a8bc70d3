"""``tinygrad_rnn.utils``: PyTorch's ``torch.utils`` corner this project covers — :mod:`.data`."""

from tinygrad_rnn.utils import data

__all__ = ["data"]
