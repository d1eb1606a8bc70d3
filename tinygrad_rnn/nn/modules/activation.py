"""``torch.nn.modules.activation``: the activations this project has."""

from tinygrad_rnn.nn.layers import LogSoftmax, ReLU, Sigmoid, Softmax, Tanh

__all__ = ["LogSoftmax", "ReLU", "Sigmoid", "Softmax", "Tanh"]
