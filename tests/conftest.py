"""Shared fixtures: the device each test runs on, and hypothesis profiles.

* ``device``: every test that takes it runs once on ``cpu`` and once on ``cuda`` (skipped cleanly, with the
  reason, when CuPy or a GPU is missing).
* Hypothesis profiles, chosen by ``HYPOTHESIS_PROFILE`` (``.ci/run`` sets ``ci``): ``ci`` is derandomized
  (same examples every run) and short; ``dev`` (the default) draws more examples at random.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from tinygrad_rnn.backend import cuda_unavailable_reason

settings.register_profile(
    "ci", derandomize=True, deadline=None, max_examples=25, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev", deadline=None, max_examples=100,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

DEVICES = ["cpu", "cuda"]


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> str:
    """``"cpu"``, then ``"cuda"`` when CuPy and a GPU are usable (skipped otherwise)."""
    if request.param == "cuda":
        reason = cuda_unavailable_reason()
        if reason is not None:
            pytest.skip(f"cuda: {reason}")
    return request.param


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


EXAMPLES = os.path.join(os.path.dirname(__file__), os.pardir, "examples")


@pytest.fixture
def load_example():
    """A loader for ``examples/NAME.py`` as a module (examples/ is not a package)."""

    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, os.path.join(EXAMPLES, f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
