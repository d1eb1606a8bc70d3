"""Neural-network layers built from the primitive ops (``torch.nn``'s names): ``Module``, containers, ``Linear``,
``Embedding``, activations, losses, recurrent cells and layers; submodules ``functional``, ``init``, ``utils``,
``modules`` (``torch.nn.modules``' paths). ``Transformer`` exists only to raise: attention is not covered."""

from tinygrad_rnn.nn import (
                                    cells,
                                    functional,
                                    init,
                                    modules,
                                    utils,
)
from tinygrad_rnn.nn.cells import RecurrentCell
from tinygrad_rnn.nn.container import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from tinygrad_rnn.nn.layers import (
                                    Dropout,
                                    Embedding,
                                    Flatten,
                                    Identity,
                                    Linear,
                                    LogSoftmax,
                                    ReLU,
                                    Sigmoid,
                                    Softmax,
                                    Tanh,
)
from tinygrad_rnn.nn.loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss
from tinygrad_rnn.nn.module import IncompatibleKeys, Module, Parameter, StateDictError
from tinygrad_rnn.nn.recurrent import (
                                    GRU,
                                    LSTM,
                                    RNN,
                                    GRUCell,
                                    LSTMCell,
                                    PeepholeLSTM,
                                    PeepholeLSTMCell,
                                    RNNBase,
                                    RNNCell,
                                    RNNCellBase,
                                    pad_sequences,
)
from tinygrad_rnn.nn.transformer import Transformer

__all__ = [
                                    "GRU",
                                    "LSTM",
                                    "RNN",
                                    "BCELoss",
                                    "BCEWithLogitsLoss",
                                    "CrossEntropyLoss",
                                    "Dropout",
                                    "Embedding",
                                    "Flatten",
                                    "GRUCell",
                                    "Identity",
                                    "IncompatibleKeys",
                                    "L1Loss",
                                    "LSTMCell",
                                    "Linear",
                                    "LogSoftmax",
                                    "MSELoss",
                                    "Module",
                                    "ModuleDict",
                                    "ModuleList",
                                    "NLLLoss",
                                    "Parameter",
                                    "ParameterDict",
                                    "ParameterList",
                                    "PeepholeLSTM",
                                    "PeepholeLSTMCell",
                                    "RNNBase",
                                    "RNNCell",
                                    "RNNCellBase",
                                    "ReLU",
                                    "RecurrentCell",
                                    "Sequential",
                                    "Sigmoid",
                                    "Softmax",
                                    "StateDictError",
                                    "Tanh",
                                    "Transformer",
                                    "cells",
                                    "functional",
                                    "init",
                                    "modules",
                                    "pad_sequences",
                                    "utils",
]

from tinygrad_rnn.nn.more_layers import GELU, LayerNorm, LeakyReLU, Softplus  # noqa: E402

__all__ += ["GELU", "LayerNorm", "LeakyReLU", "Softplus"]
