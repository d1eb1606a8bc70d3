"""``nn.Transformer``'s place. Attention models are deliberately not covered (README: "What this project does
not cover"): this project is about recurrent networks built from primitive ops.

The class exists so that a PyTorch program that *defines* a subclass of ``nn.Transformer`` but trains an RNN
(pytorch/examples' word_language_model does) runs with only its imports changed; building one raises.
"""

from __future__ import annotations

from typing import Any

from tinygrad_rnn.nn.module import Module

__all__ = ["Transformer"]


class Transformer(Module):
    """Not supported: constructing one (or a subclass) raises.

    Raises:
        NotImplementedError: always, naming the class.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(
            f"{type(self).__name__}: nn.Transformer is not supported by tinygrad_rnn (recurrent networks only: "
            "RNN, LSTM, GRU and their cells)")
