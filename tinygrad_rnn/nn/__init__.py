"""Neural-network layers built from the primitive ops (``torch.nn``'s names): ``Module``, containers, ``Linear``,
``Embedding``, activations, losses, recurrent cells and layers; submodules ``functional``, ``init``, ``utils``,
``modules`` (``torch.nn.modules``' paths). ``Transformer`` exists only to raise: attention is not covered."""

from tinygrad_rnn.nn import functional, init
from tinygrad_rnn.nn.container import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from tinygrad_rnn.nn.layers import (Dropout, Embedding, Flatten, Identity, Linear, LogSoftmax, ReLU, Sigmoid, Softmax,
                                    Tanh)
from tinygrad_rnn.nn.loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss
from tinygrad_rnn.nn.module import IncompatibleKeys, Module, Parameter, StateDictError
from tinygrad_rnn.nn import cells, utils  # noqa: I001  (utils.rnn and the cells build on the layers above)
from tinygrad_rnn.nn.cells import RecurrentCell
from tinygrad_rnn.nn.recurrent import (GRU, LSTM, RNN, GRUCell, LSTMCell, PeepholeLSTM, PeepholeLSTMCell, RNNBase,
                                       RNNCell, RNNCellBase, pad_sequences)
from tinygrad_rnn.nn.transformer import Transformer
from tinygrad_rnn.nn import modules  # noqa: I001  (torch.nn.modules' paths to the classes above)

__all__ = ["Module", "Parameter", "StateDictError", "IncompatibleKeys",
           "Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict",
           "Linear", "Embedding", "Dropout", "Identity", "Flatten", "ReLU", "Tanh", "Sigmoid", "Softmax", "LogSoftmax",
           "CrossEntropyLoss", "NLLLoss", "MSELoss", "L1Loss", "BCELoss", "BCEWithLogitsLoss",
           "RNNCell", "LSTMCell", "GRUCell", "RNN", "LSTM", "GRU", "pad_sequences", "RecurrentCell", "RNNBase",
           "RNNCellBase", "PeepholeLSTM", "PeepholeLSTMCell", "cells", "functional", "init", "utils",
           "modules", "Transformer"]
