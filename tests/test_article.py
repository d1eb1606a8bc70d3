"""Tests of tinygrad_rnn.article: the article's equations with hand-derived BPTT.

The hand-derived gradients are checked against float64 central finite differences, over sizes,
lengths, seeds and initial states drawn by hypothesis; then truncated BPTT, per-sample against
mini-batch gradients, the PyTorch state-dict layout, and clear errors. Last, the tape's gradients
(``loss.backward()`` through the ``nn`` layers, or through Tensor ops for the two models PyTorch
has no layer for) must equal the hand-derived ones to 1e-10 relative error in float64; the tape
side is ``tinygrad_rnn.article_check``'s, so the example and the tests check the same thing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_rnn import Tensor, article, article_check, nn
from tinygrad_rnn.backend import device_of, normalize_device, to_device, to_numpy

# (cell, options) for every model the article module provides.
MODELS = [
    ("rnn", {"activation": None}),
    ("rnn", {"activation": "tanh"}),
    ("lstm", {"variant": "standard"}),
    ("lstm", {"variant": "article"}),
    ("gru", {}),
]
MODEL_IDS = ["rnn-linear", "rnn-tanh", "lstm-standard", "lstm-article", "gru"]


def make_problem(
    cell: str, opts: dict[str, Any], n: int, d: int, k: int, batch: int, steps: int, seed: int, given_state: bool
) -> dict[str, Any]:
    """Random float64 parameters, inputs, output gradient and (maybe) initial states."""
    rng = np.random.default_rng(seed)
    p = article.init_params(cell, n, d, k, seed=seed)
    x = rng.normal(size=(steps, batch, n))
    out_size = k if cell == "rnn" else d
    d_out = rng.normal(size=(steps, batch, out_size))
    states = None
    if given_state:
        states = {key: rng.normal(size=(batch, d)) for key in article.STATE_KEYS[cell]}
    return {"cell": cell, "opts": opts, "p": p, "x": x, "d_out": d_out, "states": states}


@st.composite
def problems(draw: st.DrawFn, cell: str, opts: dict[str, Any], max_size: int, max_steps: int) -> dict[str, Any]:
    sizes = st.integers(1, max_size)
    return make_problem(
        cell,
        opts,
        n=draw(sizes),
        d=draw(sizes),
        k=draw(sizes),
        batch=draw(st.integers(1, 3)),
        steps=draw(st.integers(1, max_steps)),
        seed=draw(st.integers(0, 2**32 - 1)),
        given_state=draw(st.booleans()),
    )


def assert_all_passed(results: dict[str, article.GradCheckResult]) -> None:
    failed = {key: result for key, result in results.items() if not result.passed}
    assert not failed, f"hand-derived gradients differ from finite differences: {failed}"


# ----------------------------------------------------------------------------------------------
# hand-derived BPTT against finite differences


@pytest.mark.parametrize("activation", [None, "tanh"], ids=["linear", "tanh"])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_rnn_bptt_matches_finite_differences(activation: str | None, data: st.DataObject) -> None:
    prob = data.draw(problems("rnn", {"activation": activation}, max_size=4, max_steps=40))
    results = article.check_bptt_finite_differences(
        "rnn", prob["p"], prob["x"], prob["d_out"], prob["states"], activation=activation
    )
    assert set(results) == set(article.PARAM_KEYS["rnn"]) | {"S0"}
    assert_all_passed(results)


@pytest.mark.parametrize("variant", ["standard", "article"])
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_lstm_bptt_matches_finite_differences(variant: str, data: st.DataObject) -> None:
    prob = data.draw(problems("lstm", {"variant": variant}, max_size=3, max_steps=40))
    results = article.check_bptt_finite_differences(
        "lstm", prob["p"], prob["x"], prob["d_out"], prob["states"], variant=variant
    )
    assert set(results) == set(article.PARAM_KEYS["lstm"]) | {"h0", "s0"}
    assert_all_passed(results)


@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_gru_bptt_matches_finite_differences(data: st.DataObject) -> None:
    prob = data.draw(problems("gru", {}, max_size=3, max_steps=40))
    results = article.check_bptt_finite_differences("gru", prob["p"], prob["x"], prob["d_out"], prob["states"])
    assert set(results) == set(article.PARAM_KEYS["gru"]) | {"h0"}
    assert_all_passed(results)


def test_finite_difference_check_catches_a_wrong_gradient(monkeypatch: pytest.MonkeyPatch) -> None:
    """The checker is not vacuous: a gradient with one wrong factor fails it."""
    prob = make_problem("rnn", {}, n=2, d=3, k=2, batch=2, steps=5, seed=0, given_state=False)
    good = article.rnn_bptt

    def wrong_bptt(*args: Any, **kwargs: Any) -> dict[str, Any]:
        grads = good(*args, **kwargs)
        grads["W"] = grads["W"] * 1.001
        return grads

    monkeypatch.setattr(article, "rnn_bptt", wrong_bptt)
    results = article.check_bptt_finite_differences("rnn", prob["p"], prob["x"], prob["d_out"])
    assert not results["W"].passed
    assert results["U"].passed


# ----------------------------------------------------------------------------------------------
# truncated BPTT


def states_after(cell: str, opts: dict[str, Any], p: dict, x: np.ndarray, states: dict | None) -> dict:
    """The states after running all of ``x`` (the next chunk's initial states)."""
    if cell == "rnn":
        S, _ = article.rnn_forward(p, x, None if states is None else states["S0"], **opts)
        return {"S0": S[-1]}
    if cell == "lstm":
        h0 = None if states is None else states["h0"]
        s0 = None if states is None else states["s0"]
        h, s = article.lstm_forward(p, x, h0, s0, **opts)
        return {"h0": h[-1], "s0": s[-1]}
    h = article.gru_forward(p, x, None if states is None else states["h0"])
    return {"h0": h[-1]}


@pytest.mark.parametrize(("cell", "opts"), MODELS, ids=MODEL_IDS)
@settings(max_examples=6, deadline=None)
@given(data=st.data())
def test_truncated_bptt_matches_finite_differences_per_chunk(
    cell: str, opts: dict[str, Any], data: st.DataObject
) -> None:
    """Truncated BPTT = Σ over chunks of ∂(chunk loss)/∂θ with the chunk's initial state held fixed."""
    prob = data.draw(problems(cell, opts, max_size=3, max_steps=30))
    p, x, d_out = prob["p"], prob["x"], prob["d_out"]
    chunk = data.draw(st.integers(1, x.shape[0]))
    truncated = article.truncated_bptt(cell, p, x, d_out, chunk, prob["states"], **opts)

    expected: dict[str, np.ndarray] = {}
    chunk_states = prob["states"]
    for start in range(0, x.shape[0], chunk):
        x_chunk = x[start : start + chunk]
        numeric = article.finite_difference_gradients(
            cell, p, x_chunk, d_out[start : start + chunk], chunk_states, **opts
        )
        for key in article.PARAM_KEYS[cell]:
            expected[key] = expected.get(key, 0.0) + numeric[key]
        if start == 0:
            expected.update({key: numeric[key] for key in article.STATE_KEYS[cell]})
        chunk_states = states_after(cell, opts, p, x_chunk, chunk_states)

    assert_all_passed(article.compare_gradients(truncated, expected, rtol=1e-6, atol=1e-9))


@pytest.mark.parametrize(("cell", "opts"), MODELS, ids=MODEL_IDS)
def test_truncated_bptt_with_one_chunk_is_full_bptt(cell: str, opts: dict[str, Any]) -> None:
    prob = make_problem(cell, opts, n=2, d=3, k=2, batch=2, steps=7, seed=1, given_state=True)
    args = (cell, prob["p"], prob["x"], prob["d_out"])
    full = article.bptt(*args, prob["states"], **opts)
    for chunk in (7, 100):
        truncated = article.truncated_bptt(*args, chunk, prob["states"], **opts)
        for key in full:
            np.testing.assert_array_equal(truncated[key], full[key])
    cut = article.truncated_bptt(*args, 2, prob["states"], **opts)
    assert not np.allclose(cut["W" if cell != "gru" else "W_r"], full["W" if cell != "gru" else "W_r"])


# ----------------------------------------------------------------------------------------------
# stochastic (per-sample) against mini-batch gradients


@pytest.mark.parametrize(("cell", "opts"), MODELS, ids=MODEL_IDS)
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_minibatch_gradient_is_mean_of_per_sample_gradients(
    cell: str, opts: dict[str, Any], data: st.DataObject
) -> None:
    """For L = mean_b L_b with L_b = ½ Σ_t ‖out_{t,b} − y_{t,b}‖², ∂L/∂θ = mean_b ∂L_b/∂θ."""
    prob = data.draw(problems(cell, opts, max_size=4, max_steps=20))
    p, x, states = prob["p"], prob["x"], prob["states"]
    batch = x.shape[1]
    out = article.forward(cell, p, x, states, **opts)
    y = np.random.default_rng(0).normal(size=out.shape)
    residual = out - y

    minibatch = article.bptt(cell, p, x, residual / batch, states, **opts)
    per_sample = []
    for b in range(batch):
        sample_states = None if states is None else {key: value[b : b + 1] for key, value in states.items()}
        per_sample.append(article.bptt(cell, p, x[:, b : b + 1], residual[:, b : b + 1], sample_states, **opts))

    for key in article.PARAM_KEYS[cell]:
        mean = sum(g[key] for g in per_sample) / batch
        np.testing.assert_allclose(minibatch[key], mean, rtol=1e-10, atol=1e-13)
    for key in article.STATE_KEYS[cell]:  # each sample's own initial state gets 1/B of its gradient
        stacked = np.concatenate([g[key] for g in per_sample]) / batch
        np.testing.assert_allclose(minibatch[key], stacked, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize(("cell", "opts"), MODELS, ids=MODEL_IDS)
def test_sgd_update_decreases_the_loss_at_the_gradients_rate(cell: str, opts: dict[str, Any]) -> None:
    """V_new = V_old − η dL/dV lowers L by η‖∇L‖² to first order."""
    prob = make_problem(cell, opts, n=3, d=4, k=2, batch=3, steps=6, seed=2, given_state=False)
    p, x = prob["p"], prob["x"]
    y = np.random.default_rng(3).normal(size=article.forward(cell, p, x, **opts).shape)

    def loss(params: dict) -> float:
        out = article.forward(cell, params, x, **opts)
        return 0.5 * float(((out - y) ** 2).sum()) / x.shape[1]

    grads = article.bptt(cell, p, x, (article.forward(cell, p, x, **opts) - y) / x.shape[1], **opts)
    lr = 1e-6
    stepped = article.sgd_update(p, grads, lr)
    squared_norm = sum(float((grads[key] ** 2).sum()) for key in p)
    assert set(stepped) == set(p)
    assert loss(stepped) < loss(p)
    np.testing.assert_allclose((loss(p) - loss(stepped)) / lr, squared_norm, rtol=1e-4)


# ----------------------------------------------------------------------------------------------
# forward: the batched form is the article's column-vector form, sample by sample


def test_batched_rnn_is_the_articles_column_vector_form() -> None:
    """S_t = U I_t + W S_{t-1} + b, O_t = V S_t + c, per sample with column vectors (article §1)."""
    prob = make_problem("rnn", {}, n=3, d=4, k=2, batch=3, steps=5, seed=4, given_state=True)
    p, I, S0 = prob["p"], prob["x"], prob["states"]["S0"]
    S, O = article.rnn_forward(p, I, S0)
    for b in range(I.shape[1]):
        state = S0[b][:, None]
        for t in range(I.shape[0]):
            state = p["U"] @ I[t, b][:, None] + p["W"] @ state + p["b"][:, None]
            output = p["V"] @ state + p["c"][:, None]
            np.testing.assert_allclose(S[t, b], state[:, 0], rtol=1e-13, atol=1e-13)
            np.testing.assert_allclose(O[t, b], output[:, 0], rtol=1e-13, atol=1e-13)


def test_lstm_variants_differ_only_in_the_hidden_state() -> None:
    prob = make_problem("lstm", {}, n=3, d=4, k=0, batch=2, steps=1, seed=5, given_state=True)
    p, x, h0, s0 = prob["p"], prob["x"], prob["states"]["h0"], prob["states"]["s0"]
    h_std, s_std = article.lstm_forward(p, x, h0, s0, variant="standard")
    h_art, s_art = article.lstm_forward(p, x, h0, s0, variant="article")
    np.testing.assert_array_equal(s_std, s_art)  # one step: same gates, same cell state
    o = 1.0 / (1.0 + np.exp(-(x[0] @ p["U_o"].T + h0 @ p["W_o"].T + p["b_o"])))
    np.testing.assert_allclose(h_art[0], o * s_art[0], rtol=1e-13)
    np.testing.assert_allclose(h_std[0], o * np.tanh(s_std[0]), rtol=1e-13)


def test_gru_keeps_the_old_state_when_the_update_gate_is_one() -> None:
    """h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t-1}: a saturated update gate copies the state."""
    prob = make_problem("gru", {}, n=2, d=3, k=0, batch=2, steps=4, seed=6, given_state=True)
    p = dict(prob["p"], b_z=np.full(3, 800.0))
    h = article.gru_forward(p, prob["x"], prob["states"]["h0"])
    np.testing.assert_allclose(h[-1], prob["states"]["h0"], rtol=1e-12)


@pytest.mark.parametrize(("cell", "opts"), MODELS, ids=MODEL_IDS)
def test_zero_state_by_default_and_inputs_not_mutated(cell: str, opts: dict[str, Any]) -> None:
    prob = make_problem(cell, opts, n=2, d=3, k=2, batch=2, steps=4, seed=7, given_state=False)
    p, x, d_out = prob["p"], prob["x"], prob["d_out"]
    copies = {key: value.copy() for key, value in p.items()}
    x_copy, d_out_copy = x.copy(), d_out.copy()
    zeros = {key: np.zeros((2, 3)) for key in article.STATE_KEYS[cell]}
    implicit = article.bptt(cell, p, x, d_out, **opts)
    explicit = article.bptt(cell, p, x, d_out, zeros, **opts)
    assert set(implicit) == set(article.PARAM_KEYS[cell]) | set(article.STATE_KEYS[cell])
    for key in implicit:
        np.testing.assert_array_equal(implicit[key], explicit[key])
        assert implicit[key].shape == (zeros | p)[key].shape
    for key in p:
        np.testing.assert_array_equal(p[key], copies[key])
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(d_out, d_out_copy)


@pytest.mark.parametrize(("cell", "opts"), MODELS, ids=MODEL_IDS)
def test_float32_stays_float32(cell: str, opts: dict[str, Any]) -> None:
    prob = make_problem(cell, opts, n=2, d=3, k=2, batch=2, steps=3, seed=8, given_state=False)
    p32 = {key: value.astype(np.float32) for key, value in prob["p"].items()}
    x32 = prob["x"].astype(np.float32)
    assert article.forward(cell, p32, x32, **opts).dtype == np.float32
    grads = article.bptt(cell, p32, x32, prob["d_out"].astype(np.float32), **opts)
    assert all(g.dtype == np.float32 for g in grads.values())


def test_sigmoid_does_not_overflow() -> None:
    prob = make_problem("lstm", {}, n=1, d=2, k=0, batch=1, steps=2, seed=9, given_state=False)
    with np.errstate(over="raise", invalid="raise"):
        h, s = article.lstm_forward(prob["p"], prob["x"] * 1e4)
    assert np.isfinite(h).all() and np.isfinite(s).all()


@pytest.mark.parametrize(("cell", "opts"), MODELS, ids=MODEL_IDS)
def test_every_device_gives_the_numpy_numbers(cell: str, opts: dict[str, Any], device: str) -> None:
    """The module runs on whichever backend owns the arrays (CuPy on ``cuda``) and returns its arrays."""
    prob = make_problem(cell, opts, n=3, d=4, k=2, batch=2, steps=6, seed=10, given_state=True)
    device = normalize_device(device)
    on_device = {
        "p": {key: to_device(value, device) for key, value in prob["p"].items()},
        "states": {key: to_device(value, device) for key, value in prob["states"].items()},
        "x": to_device(prob["x"], device),
        "d_out": to_device(prob["d_out"], device),
    }
    expected = article.bptt(cell, prob["p"], prob["x"], prob["d_out"], prob["states"], **opts)
    got = article.bptt(cell, on_device["p"], on_device["x"], on_device["d_out"], on_device["states"], **opts)
    for key in expected:
        assert device_of(got[key]) == device
        np.testing.assert_allclose(to_numpy(got[key]), expected[key], rtol=1e-10, atol=1e-12)
    truncated = article.truncated_bptt(
        cell, on_device["p"], on_device["x"], on_device["d_out"], 4, on_device["states"], **opts
    )
    assert all(device_of(value) == device for value in truncated.values())
    sd = article.to_state_dict(on_device["p"], cell)
    assert all(isinstance(value, np.ndarray) for value in sd.values())


# ----------------------------------------------------------------------------------------------
# PyTorch layout


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@settings(max_examples=10, deadline=None)
@given(n=st.integers(1, 5), d=st.integers(1, 5), k=st.integers(1, 5), seed=st.integers(0, 2**32 - 1))
def test_state_dict_round_trip(cell: str, n: int, d: int, k: int, seed: int) -> None:
    p = article.init_params(cell, n, d, k, seed=seed)
    sd = article.to_state_dict(p, cell)
    gates = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
    assert list(sd)[:4] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    assert sd["weight_ih_l0"].shape == (gates * d, n)
    assert sd["weight_hh_l0"].shape == (gates * d, d)
    assert sd["bias_ih_l0"].shape == sd["bias_hh_l0"].shape == (gates * d,)
    back = article.from_state_dict(sd, cell)
    assert list(back) == list(article.PARAM_KEYS[cell])
    for key in p:
        np.testing.assert_array_equal(back[key], p[key])
    again = article.to_state_dict(back, cell)
    assert list(again) == list(sd)
    for key in sd:
        np.testing.assert_array_equal(again[key], sd[key])


def test_state_dict_uses_pytorch_gate_order() -> None:
    d = 2
    lstm = article.init_params("lstm", 3, d, seed=11)
    sd = article.to_state_dict(lstm, "lstm")
    for block, suffix in enumerate(["_i", "_f", "", "_o"]):  # i, f, g (= candidate s̃), o
        rows = slice(block * d, (block + 1) * d)
        np.testing.assert_array_equal(sd["weight_ih_l0"][rows], lstm["U" + suffix])
        np.testing.assert_array_equal(sd["weight_hh_l0"][rows], lstm["W" + suffix])
        np.testing.assert_array_equal(sd["bias_ih_l0"][rows], lstm["b" + suffix])
    np.testing.assert_array_equal(sd["bias_hh_l0"], np.zeros(4 * d))

    gru = article.init_params("gru", 3, d, seed=12)
    sd = article.to_state_dict(gru, "gru")
    for block, gate in enumerate(["r", "z", "n"]):
        rows = slice(block * d, (block + 1) * d)
        np.testing.assert_array_equal(sd["weight_ih_l0"][rows], gru["U_" + gate])
        np.testing.assert_array_equal(sd["weight_hh_l0"][rows], gru["W_" + gate])
    np.testing.assert_array_equal(sd["bias_ih_l0"], np.concatenate([gru["b_r"], gru["b_z"], gru["b_in"]]))
    np.testing.assert_array_equal(sd["bias_hh_l0"], np.concatenate([np.zeros(2 * d), gru["b_hn"]]))

    rnn = article.init_params("rnn", 3, d, 4, seed=13)
    sd = article.to_state_dict(rnn, "rnn")
    assert list(sd) == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "fc.weight", "fc.bias"]
    np.testing.assert_array_equal(sd["fc.weight"], rnn["V"])
    np.testing.assert_array_equal(sd["fc.bias"], rnn["c"])


class FakeTensor:
    """Stands for any tensor type with ``detach()`` and ``.numpy()`` (ours, PyTorch's)."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def detach(self) -> FakeTensor:
        return self

    def numpy(self) -> np.ndarray:
        return self.array


def test_from_state_dict_sums_the_two_biases_and_keeps_the_gru_n_biases_apart() -> None:
    rng = np.random.default_rng(14)
    d, n = 2, 3
    sd = {
        "weight_ih_l0": rng.normal(size=(3 * d, n)),
        "weight_hh_l0": rng.normal(size=(3 * d, d)),
        "bias_ih_l0": rng.normal(size=3 * d),
        "bias_hh_l0": rng.normal(size=3 * d),
    }
    p = article.from_state_dict({key: FakeTensor(value) for key, value in sd.items()}, "gru")
    np.testing.assert_array_equal(p["b_r"], sd["bias_ih_l0"][:d] + sd["bias_hh_l0"][:d])
    np.testing.assert_array_equal(p["b_z"], sd["bias_ih_l0"][d : 2 * d] + sd["bias_hh_l0"][d : 2 * d])
    np.testing.assert_array_equal(p["b_in"], sd["bias_ih_l0"][2 * d :])
    np.testing.assert_array_equal(p["b_hn"], sd["bias_hh_l0"][2 * d :])

    lstm_sd = {
        "weight_ih_l0": rng.normal(size=(4 * d, n)).tolist(),  # anything np.asarray takes
        "weight_hh_l0": rng.normal(size=(4 * d, d)).astype(np.float32),
        "bias_ih_l0": rng.normal(size=4 * d).astype(np.float32),
        "bias_hh_l0": rng.normal(size=4 * d).astype(np.float32),
    }
    p = article.from_state_dict(lstm_sd, "lstm")
    assert p["W_f"].dtype == np.float32
    np.testing.assert_array_equal(p["b"], lstm_sd["bias_ih_l0"][2 * d : 3 * d] + lstm_sd["bias_hh_l0"][2 * d : 3 * d])


def test_from_state_dict_without_biases_gives_zero_biases() -> None:
    rng = np.random.default_rng(15)
    sd = {"weight_ih_l0": rng.normal(size=(4, 3)), "weight_hh_l0": rng.normal(size=(4, 4))}
    p = article.from_state_dict(dict(sd, **{"fc.weight": rng.normal(size=(2, 4)), "fc.bias": np.zeros(2)}), "rnn")
    np.testing.assert_array_equal(p["b"], np.zeros(4))


def test_from_state_dict_errors_name_the_keys() -> None:
    sd = article.to_state_dict(article.init_params("lstm", 3, 2, seed=16), "lstm")
    with pytest.raises(KeyError, match="weight_hh_l0"):
        article.from_state_dict({key: value for key, value in sd.items() if key != "weight_hh_l0"}, "lstm")
    with pytest.raises(KeyError, match="weight_ih_l1"):
        article.from_state_dict(dict(sd, weight_ih_l1=sd["weight_ih_l0"]), "lstm")
    with pytest.raises(KeyError, match="bias_hh_l0"):
        article.from_state_dict({key: value for key, value in sd.items() if key != "bias_hh_l0"}, "lstm")
    with pytest.raises(ValueError, match="weight_hh_l0"):
        article.from_state_dict(sd, "gru")  # 4·d rows are not 3·d
    with pytest.raises(KeyError, match="fc.weight"):
        article.from_state_dict(article.to_state_dict(article.init_params("gru", 3, 2), "gru"), "rnn")


# ----------------------------------------------------------------------------------------------
# errors


def test_errors_name_what_is_wrong() -> None:
    p = article.init_params("rnn", 3, 4, 2)
    I = np.zeros((5, 2, 3))
    with pytest.raises(ValueError, match="feature size 2"):
        article.rnn_forward(p, np.zeros((5, 2, 2)))
    with pytest.raises(ValueError, match="3-D"):
        article.rnn_forward(p, np.zeros((5, 3)))
    with pytest.raises(ValueError, match="'W'.*expected \\(4, 4\\)"):
        article.rnn_forward(dict(p, W=np.zeros((4, 3))), I)
    with pytest.raises(KeyError, match="'c'"):
        article.rnn_forward({key: value for key, value in p.items() if key != "c"}, I)
    with pytest.raises(ValueError, match="dO"):
        article.rnn_bptt(p, I, np.zeros((5, 2, 4)))
    with pytest.raises(ValueError, match="S0"):
        article.rnn_forward(p, I, np.zeros((3, 4)))
    with pytest.raises(ValueError, match="activation"):
        article.rnn_forward(p, I, activation="relu")
    with pytest.raises(ValueError, match="variant"):
        article.lstm_forward(article.init_params("lstm", 3, 4), I, variant="peephole")
    with pytest.raises(ValueError, match="only applies"):
        article.forward("gru", article.init_params("gru", 3, 4), I, variant="article")
    with pytest.raises(ValueError, match="unknown initial state"):
        article.bptt("rnn", p, I, np.zeros((5, 2, 2)), {"h0": np.zeros((2, 4))})
    with pytest.raises(ValueError, match="unknown cell"):
        article.forward("transformer", p, I)
    with pytest.raises(ValueError, match="chunk_size"):
        article.truncated_bptt("rnn", p, I, np.zeros((5, 2, 2)), 0)
    with pytest.raises(ValueError, match="output_size"):
        article.init_params("rnn", 3, 4)


# ----------------------------------------------------------------------------------------------
# the tape against the hand-derived gradients




@pytest.mark.parametrize(("cell", "opts"), MODELS, ids=MODEL_IDS)
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_tape_gradients_equal_hand_derived(cell: str, opts: dict[str, Any], data: st.DataObject) -> None:
    """loss.backward() gives the hand-derived BPTT to ≤ 1e-10 relative error (float64), full or truncated."""
    prob = data.draw(problems(cell, opts, max_size=5, max_steps=40))
    steps = prob["x"].shape[0]
    chunk = data.draw(st.one_of(st.none(), st.integers(1, steps)), label="chunk_size")
    args = (cell, prob["p"], prob["x"], prob["d_out"], prob["states"])
    if chunk is None:
        hand = article.bptt(*args, **opts)
    else:
        hand = article.truncated_bptt(cell, prob["p"], prob["x"], prob["d_out"], chunk, prob["states"], **opts)
    tape = article_check.tape_gradients(*args, chunk_size=chunk, **opts)
    assert set(tape) == set(hand)
    results = article.compare_gradients(tape, hand, rtol=1e-10, atol=article_check.tape_atol(hand))
    assert all(r.passed for r in results.values()), results


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_nn_layer_weights_run_the_same_in_the_article_module(cell: str) -> None:
    """A layer's own state dict (two nonzero biases) maps onto the article's parameters, and back."""
    n, d, k, steps, batch = 3, 4, 2, 6, 2
    rng = np.random.default_rng(17)
    x = rng.normal(size=(steps, batch, n))
    h0 = rng.normal(size=(1, batch, d))
    layer = article_check.new_layer(cell, n, d)
    sd = dict(layer.state_dict())
    if cell == "rnn":
        fc = nn.Linear(d, k, dtype=np.float64)
        sd.update({"fc." + key: value for key, value in fc.state_dict().items()})
    p = article.from_state_dict(sd, cell)  # our Tensors as values

    if cell == "lstm":
        c0 = rng.normal(size=(1, batch, d))
        out, (h_n, c_n) = layer(Tensor(x), (Tensor(h0), Tensor(c0)))
        h, s = article.lstm_forward(p, x, h0[0], c0[0])
        np.testing.assert_allclose(s[-1], c_n.numpy()[0], rtol=1e-12, atol=1e-14)
    elif cell == "gru":
        out, h_n = layer(Tensor(x), Tensor(h0))
        h = article.gru_forward(p, x, h0[0])
    else:
        out, h_n = layer(Tensor(x), Tensor(h0))
        h, O = article.rnn_forward(p, x, h0[0], activation="tanh")
        np.testing.assert_allclose(O, fc(out).numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h, out.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h[-1], h_n.numpy()[0], rtol=1e-12, atol=1e-14)

    back = article.to_state_dict(p, cell)  # one bias per gate: the same layer function
    layer.load_state_dict({key: value for key, value in back.items() if not key.startswith("fc.")})
    again = layer(Tensor(x), (Tensor(h0), Tensor(c0)) if cell == "lstm" else Tensor(h0))[0]
    np.testing.assert_allclose(again.numpy(), out.numpy(), rtol=1e-12, atol=1e-14)


def test_article_check_example_passes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert article_check.main(["--steps", "6", "--batch", "2", "--chunk", "4", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "FAIL" not in printed
    for label, *_ in article_check.MODELS:
        assert label in printed
    assert (tmp_path / "article_check.txt").read_text(encoding="utf-8").strip() == printed.strip()
