"""The smaller examples run end to end on a tiny budget and write what they promise."""


import pytest


def test_vanishing_gradients_rnn_decays_and_open_forget_gate_does_not(tmp_path, capsys, load_example):
    pytest.importorskip("matplotlib")
    example = load_example("vanishing_gradients")
    assert example.main(["--steps", "60", "--batch", "4", "--hidden-size", "16", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "vanishing_gradients.png").stat().st_size > 10_000
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.strip()[:1].isdigit()]
    first_step = {int(r[0]): [float(v) for v in r[1:]] for r in rows}[1]
    rnn, lstm, _gru, lstm_open = first_step
    assert rnn < 1e-6 and lstm < 1e-6          # geometric decay over 60 steps at initialisation
    assert lstm_open > 1e3 * lstm               # an open forget gate carries the gradient back


def test_article_check_example_passes(load_example):
    assert load_example("article_check").main is not None
    from tinygrad_rnn.article_check import main

    assert main(["--steps", "4", "--batch", "2"]) == 0
