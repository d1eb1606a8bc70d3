"""``torch.nn.modules.activation``: the activations this project has."""

from tinygrad_rnn.nn.layers import LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from tinygrad_rnn.nn.more_layers import GELU, LeakyReLU, Softplus

__all__ = ["GELU", "LeakyReLU", "LogSoftmax", "ReLU", "Sigmoid", "Softmax", "Softplus", "Tanh"]
