"""Optimizers and learning-rate schedules with ``torch.optim``'s names, defaults and update rules.

``SGD``, ``Adam``, ``AdamW``, ``RMSprop``, ``Adagrad``, ``LBFGS`` share :class:`Optimizer`: parameter
groups with per-group options, ``zero_grad()``, ``step(closure=None)``, and ``state_dict()`` /
``load_state_dict()`` in PyTorch's layout (loading checks everything before changing anything).
Schedules live in :mod:`tinygrad_rnn.optim.lr_scheduler`. Updates run on the parameters' arrays in place,
outside the tape; with the same gradients they give PyTorch's parameters to rounding (≤ 1e-10 relative in
float64, tested in ``tests/test_optim.py``).

``clip_grad_norm_`` is re-exported from :mod:`tinygrad_rnn.nn.utils` (its PyTorch home).
"""

from tinygrad_rnn.nn.utils.clip_grad import clip_grad_norm_, clip_grad_value_
from tinygrad_rnn.optim import lr_scheduler
from tinygrad_rnn.optim.adagrad import Adagrad
from tinygrad_rnn.optim.adam import Adam, AdamW
from tinygrad_rnn.optim.lbfgs import LBFGS
from tinygrad_rnn.optim.optimizer import Optimizer, OptimizerError
from tinygrad_rnn.optim.rmsprop import RMSprop
from tinygrad_rnn.optim.sgd import SGD

__all__ = ["LBFGS", "SGD", "Adagrad", "Adam", "AdamW", "Adamax", "NAdam", "Optimizer", "OptimizerError", "RMSprop",
           "clip_grad_norm_", "clip_grad_value_", "lr_scheduler"]

from tinygrad_rnn.optim.nadam_adamax import Adamax, NAdam  # noqa: E402
