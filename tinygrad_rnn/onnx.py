"""``torch.onnx``'s place. ONNX export is deliberately not supported (README: "What this project does not cover").

The module exists so that a PyTorch program that does ``import torch.onnx`` (pytorch/examples'
word_language_model does, and exports only when asked) runs with only its imports changed; calling
:func:`export` raises a clear error instead of an ``AttributeError`` deep in the program.
"""

from __future__ import annotations

from typing import Any

__all__ = ["export"]


def export(model: Any, args: Any = None, f: Any = None, *more: Any, **kwargs: Any) -> None:
    """Not supported: raises.

    Raises:
        NotImplementedError: always; save the weights with ``tinygrad_rnn.save(model.state_dict(), f)``.
    """
    raise NotImplementedError(
        f"tinygrad_rnn.onnx.export: ONNX export is not supported (tinygrad_rnn has no graph exporter); got a "
        f"{type(model).__name__}. Save its weights with tinygrad_rnn.save(model.state_dict(), f) and load them "
        "into the same model in PyTorch to export from there.")
