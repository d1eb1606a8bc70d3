"""The main example end to end on a tiny budget: it trains, samples, checkpoints and resumes."""

import os

import numpy as np
import pytest

EXAMPLE = os.path.join(os.path.dirname(__file__), os.pardir, "examples", "char_lm.py")



@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_char_lm_trains_checkpoints_and_resumes(tmp_path, capsys, cell, load_example):
    char_lm = load_example("char_lm")
    text = tmp_path / "text.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 200, encoding="utf-8")
    args = ["--data", str(text), "--cell", cell, "--steps", "40", "--batch-size", "4", "--seq-len", "16",
            "--hidden-size", "32", "--embed-size", "8", "--sample-len", "20", "--out", str(tmp_path / "run"),
            "--no-progress", "--lr", "1e-2"]
    assert char_lm.main(args) == 0
    out = capsys.readouterr().out
    before = float(out.split("validation loss: ")[1].split(" -> ")[0])
    after = float(out.split(" -> ")[-1].split(" nats")[0])
    assert after < before - 0.5  # a repetitive text is learned quickly
    saved = np.load(tmp_path / "run" / "checkpoint.npz")
    assert int(saved["step"]) == 40
    assert "model.rnn.weight_hh_l0" in saved.files and "optim.state.0.exp_avg" in saved.files
    assert not [f for f in os.listdir(tmp_path / "run") if f.startswith(".tmp-")]

    assert char_lm.main([*args, "--resume", "--steps", "5"]) == 0
    assert "resumed from" in capsys.readouterr().out
    assert int(np.load(tmp_path / "run" / "checkpoint.npz")["step"]) == 45


def test_unigram_entropy_of_a_uniform_text_is_log_of_its_vocabulary(load_example):
    char_lm = load_example("char_lm")
    ids = np.arange(1000) % 4
    assert char_lm.unigram_entropy(ids, 4) == pytest.approx(np.log(4), rel=1e-12)
