"""The package's seams (issue 12 items 4 and 5), checked on the source: one backend boundary, public creation
functions above the tape, ``__all__`` in every public module, an op's entry points where the rule in
``tinygrad_rnn/ops.py``'s docstring puts them."""

from __future__ import annotations

import ast
import importlib
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tinygrad_rnn"
SOURCES = sorted(PACKAGE.rglob("*.py")) + sorted((ROOT / "examples").glob("*.py")) + sorted(
    (ROOT / "benchmarks").glob("*.py"))


def _tree(path: pathlib.Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def _imported_modules(tree: ast.Module) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_cupy_is_imported_only_in_backend():
    offenders = [str(p.relative_to(ROOT)) for p in SOURCES
                 if p != PACKAGE / "backend.py" and _imported_modules(_tree(p)) & {"cupy", "cupyx"}]
    assert offenders == [], f"import CuPy through tinygrad_rnn.backend, not in {offenders}"


def test_no_private_wrap_above_the_tape():
    """nn, optim, gradcheck, functional and the examples make tensors with public creation functions."""
    # the engine, its replay, and the op modules (more_ops: results of non-differentiable ops, no history)
    allowed = {PACKAGE / "tensor.py", PACKAGE / "ops.py", PACKAGE / "more_ops.py", PACKAGE / "capture.py"}
    offenders = []
    for path in SOURCES:
        if path in allowed:
            continue
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.Attribute) and node.attr == "_wrap":
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


PUBLIC_MODULES = sorted(
    ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    for p in PACKAGE.rglob("*.py") if p.name != "__main__.py"
)


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_every_public_module_has_a_complete_all(name):
    module = importlib.import_module(name)
    assert hasattr(module, "__all__"), f"{name} has no __all__"
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert missing == [], f"{name}.__all__ names what it does not define: {missing}"


def test_every_op_is_in_ops_all():
    from tinygrad_rnn import ops

    defined = [n.name for n in _tree(PACKAGE / "ops.py").body
               if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and not n.name.startswith("_")]
    assert [n for n in defined if n not in ops.__all__] == [], "add the new op's class and function to ops.__all__"


def test_ops_needs_no_builtins_module():
    assert "builtins" not in _imported_modules(_tree(PACKAGE / "ops.py"))


def test_reexports_are_the_ops_functions_themselves():
    """The top-level and functional namespaces re-export ops' functions (no wrappers, no second spelling)."""
    import tinygrad_rnn as tg
    from tinygrad_rnn import functional as F
    from tinygrad_rnn import ops
    from tinygrad_rnn.nn import functional as nnF

    for namespace in (tg, F, nnF):
        for name in ops.__all__:
            if name in namespace.__all__ and callable(getattr(ops, name)) and not isinstance(getattr(ops, name), type):
                allowed = name in _OVERRIDDEN.get(namespace.__name__, ())
                assert getattr(namespace, name) is getattr(ops, name) or allowed, (
                    f"{namespace.__name__}.{name} is not ops.{name}")


# the one allowed wrapper: a functional namespace adding PyTorch's extra keywords to the op (F.relu's inplace,
# F.embedding's padding_idx/max_norm/..., F.flatten's start_dim/end_dim), still calling ops' function
_OVERRIDDEN = {"tinygrad_rnn": ("where",),  # more_ops.where adds torch.where's one-argument form
               "tinygrad_rnn.functional": ("relu", "embedding"),
               "tinygrad_rnn.nn.functional": ("relu", "embedding", "flatten")}
