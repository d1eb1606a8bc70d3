"""tinygrad_rnn: a small reverse-mode autodiff framework on NumPy/CuPy, with RNN, LSTM and GRU built from
primitive ops so that backpropagation through time falls out of the tape.

>>> import tinygrad_rnn as tg
>>> x = tg.Tensor([[1.0, 2.0]], requires_grad=True)
>>> (x * x).sum().backward()
>>> x.grad
Tensor([[2., 4.]])
"""

from tinygrad_rnn import functional, nn, optim, utils
from tinygrad_rnn.backend import DeviceError, cuda_is_available
from tinygrad_rnn.capture import CaptureError, capture
from tinygrad_rnn.gradcheck import gradcheck
from tinygrad_rnn.ops import (
    abs,
    addmm,
    argmax,
    argmin,
    cat,
    chunk,
    clip,
    concat,
    embedding,
    exp,
    expand,
    log,
    log_softmax,
    matmul,
    max,
    mean,
    min,
    permute,
    relu,
    reshape,
    sigmoid,
    split,
    sqrt,
    squeeze,
    stack,
    sum,
    tanh,
    transpose,
    unbind,
    unsqueeze,
    where,
)
from tinygrad_rnn.serialization import CheckpointError, load, save
from tinygrad_rnn.tensor import (
    Function,
    OpError,
    Size,
    Tensor,
    arange,
    default_rng,
    detect_anomaly,
    enable_grad,
    full,
    is_grad_enabled,
    manual_seed,
    no_grad,
    ones,
    ones_like,
    rand,
    randn,
    tensor,
    zeros,
    zeros_like,
)

__version__ = "0.1.0"
