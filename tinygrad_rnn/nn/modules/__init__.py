"""``torch.nn.modules``' paths for the classes this project has (``nn.modules.rnn.LSTM`` is ``nn.LSTM``), so that
code naming them by their full path — e.g. ``serialization.safe_globals([torch.nn.modules.rnn.LSTM, ...])`` —
runs with only its imports changed. Each submodule re-exports the classes PyTorch defines there."""

from tinygrad_rnn.nn.modules import activation, container, dropout, linear, loss, module, normalization, rnn, sparse

__all__ = ["activation", "container", "dropout", "linear", "loss", "module", "normalization", "rnn", "sparse"]
