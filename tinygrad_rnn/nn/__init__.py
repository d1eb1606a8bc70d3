"""Neural-network layers built from the primitive ops: ``Module``, ``Linear``, ``Embedding``, recurrent layers."""

from tinygrad_rnn import functional
from tinygrad_rnn.nn import cells, utils
from tinygrad_rnn.nn.cells import RecurrentCell
from tinygrad_rnn.nn.layers import Dropout, Embedding, Linear
from tinygrad_rnn.nn.module import Module, Parameter, StateDictError
from tinygrad_rnn.nn.recurrent import (GRU, LSTM, RNN, GRUCell, LSTMCell, PeepholeLSTM, PeepholeLSTMCell, RNNBase,
                                       RNNCell, RNNCellBase, pad_sequences)

__all__ = ["Module", "Parameter", "StateDictError", "Linear", "Embedding", "Dropout", "RNNCell", "LSTMCell",
           "GRUCell", "RNN", "LSTM", "GRU", "pad_sequences", "functional", "RecurrentCell", "RNNBase", "RNNCellBase",
           "PeepholeLSTM", "PeepholeLSTMCell", "cells", "utils"]
