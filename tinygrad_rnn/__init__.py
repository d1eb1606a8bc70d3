"""tinygrad_rnn: a small reverse-mode autodiff framework on NumPy/CuPy, with RNN, LSTM and GRU built from
primitive ops so that backpropagation through time falls out of the tape.

It speaks PyTorch's dialect: ``import tinygrad_rnn as torch`` covers the ``torch.*`` names RNN programs use
(tensors, dtypes, devices, creation functions, ``nn``, ``nn.functional``, ``optim``, ``cuda``).

>>> import tinygrad_rnn as tg
>>> x = tg.tensor([[1.0, 2.0]], requires_grad=True)
>>> (x * x).sum().backward()
>>> x.grad
Tensor([[2., 4.]])
"""

from tinygrad_rnn import cuda, functional, nn, onnx, optim, utils
from tinygrad_rnn.backend import DeviceError, cuda_is_available, device, get_default_device, set_default_device
from tinygrad_rnn.capture import CaptureError, capture
from tinygrad_rnn.gradcheck import gradcheck
from tinygrad_rnn.ops import (
    abs,
    addmm,
    allclose,
    amax,
    amin,
    argmax,
    argmin,
    cat,
    chunk,
    clip,
    clone,
    concat,
    concatenate,
    embedding,
    equal,
    exp,
    expand,
    flatten,
    gather,
    isclose,
    log,
    log_softmax,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    multinomial,
    permute,
    relu,
    repeat,
    reshape,
    return_types,
    sigmoid,
    softmax,
    sort,
    split,
    sqrt,
    squeeze,
    stack,
    std,
    sum,
    tanh,
    topk,
    transpose,
    unbind,
    unsqueeze,
    var,
)
from tinygrad_rnn.serialization import CheckpointError, load, save
from tinygrad_rnn.tensor import (
    BoolTensor,
    ByteTensor,
    DoubleTensor,
    FloatTensor,
    Function,
    Generator,
    HalfTensor,
    IntTensor,
    LongTensor,
    OpError,
    OpTypeError,
    Size,
    Tensor,
    arange,
    as_tensor,
    bool_,
    default_rng,
    detect_anomaly,
    empty,
    empty_like,
    enable_grad,
    eye,
    float16,
    float32,
    float64,
    from_numpy,
    full,
    full_like,
    get_default_dtype,
    inference_mode,
    initial_seed,
    int8,
    int16,
    int32,
    int64,
    is_grad_enabled,
    is_tensor,
    linspace,
    manual_seed,
    no_grad,
    numel,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    randperm,
    set_default_dtype,
    set_grad_enabled,
    tensor,
    uint8,
    zeros,
    zeros_like,
)

# PyTorch's short dtype names (they shadow the builtins only inside this namespace, as in torch)
float = float32  # noqa: A001
double = float64
half = float16
long = int64
int = int32  # noqa: A001
bool = bool_  # noqa: A001
clamp = clip


def t(input: Tensor) -> Tensor:  # noqa: A002 - PyTorch's name
    """The transpose of a tensor with at most 2 dims (``torch.t``)."""
    return input.t()


__all__ = [
    "cuda", "functional", "nn", "optim", "utils", "DeviceError", "cuda_is_available", "device", "CaptureError",
    "capture", "gradcheck", "abs", "addmm", "allclose", "amax", "amin", "argmax", "argmin", "cat", "chunk", "clip",
    "clone", "concat", "concatenate", "embedding", "equal", "exp", "expand", "flatten", "gather", "isclose", "log",
    "log_softmax", "matmul", "max", "maximum", "mean", "min", "minimum", "multinomial", "permute", "relu", "repeat",
    "reshape", "return_types", "sigmoid", "softmax", "sort", "split", "sqrt", "squeeze", "stack", "std", "sum",
    "tanh", "topk", "transpose", "unbind", "unsqueeze", "var", "where", "CheckpointError", "load", "save",
    "BoolTensor", "ByteTensor", "DoubleTensor", "FloatTensor", "Function", "HalfTensor", "IntTensor", "LongTensor",
    "OpError", "Size", "Tensor", "arange", "as_tensor", "bool_", "default_rng", "detect_anomaly", "empty",
    "empty_like", "enable_grad", "eye", "float16", "float32", "float64", "from_numpy", "full", "full_like",
    "get_default_dtype", "inference_mode", "initial_seed", "int8", "int16", "int32", "int64", "is_grad_enabled",
    "is_tensor", "linspace", "manual_seed", "no_grad", "numel", "ones", "ones_like", "rand", "rand_like", "randint",
    "randn", "randn_like", "randperm", "set_default_dtype", "set_grad_enabled", "tensor", "uint8", "zeros",
    "zeros_like", "float", "double", "half", "long", "int", "bool", "clamp", "t", "onnx", "get_default_device",
    "set_default_device", "Generator",
    # from more_ops (below)
    "autograd", "bitwise_and", "bitwise_not", "bitwise_or", "bitwise_xor", "bmm", "flip", "isfinite", "isinf",
    "isnan", "logical_and", "logical_not", "logical_or", "logical_xor", "logsumexp", "mm", "nan_to_num", "narrow",
    "nonzero", "norm", "erf", "log1p", "OpTypeError",
]

__version__ = "0.1.0"

# boolean/bitwise ops, finiteness tests, nonzero, one-argument where, torch.* spellings (also installs the
# Tensor methods and Tensor.grad_fn); `where` here extends ops.where with PyTorch's one-argument form
from tinygrad_rnn import autograd  # noqa: E402
from tinygrad_rnn.more_ops import (  # noqa: E402
    bitwise_and,
    bitwise_not,
    bitwise_or,
    bitwise_xor,
    bmm,
    erf,
    flip,
    isfinite,
    isinf,
    isnan,
    log1p,
    logical_and,
    logical_not,
    logical_or,
    logical_xor,
    logsumexp,
    mm,
    nan_to_num,
    narrow,
    nonzero,
    norm,
    where,
)
