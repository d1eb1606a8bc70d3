"""The sunspot forecaster and the Python token tagger end to end on tiny budgets: each learns something real."""

import csv
import importlib.util
import json

import numpy as np
import pytest


def test_sunspot_data_is_the_yearly_series(load_example):
    years, spots = load_example("sunspots").load_sunspots()
    assert years[0] == 1700 and years[-1] == 2008 and len(years) == 309
    assert np.all(np.diff(years) == 1) and spots.min() >= 0 and 150 < spots.max() < 200


def test_sunspots_lstm_beats_persistence(tmp_path, capsys, load_example):
    example = load_example("sunspots")
    plot = importlib.util.find_spec("matplotlib") is not None
    args = ["--epochs", "30", "--hidden-size", "16", "--window", "12", "--lr", "1e-2", "--no-progress",
            "--out", str(tmp_path)]
    assert example.main(args if plot else [*args, "--no-plot"]) == 0
    assert "LSTM (this model)" in capsys.readouterr().out
    with open(tmp_path / "forecast.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2008 - 1940 + 1 and rows[0]["year"] == "1940"
    truth = np.array([float(r["truth"]) for r in rows])
    rmse = {k: np.sqrt(np.mean((np.array([float(r[k]) for r in rows]) - truth) ** 2))
            for k in ("lstm", "persistence", "cycle11", "ar9")}
    assert rmse["persistence"] == pytest.approx(32.78, abs=0.01)   # the data and the split are as documented
    assert rmse["lstm"] < 0.8 * rmse["persistence"]                 # about 20 on this budget, 17 with defaults
    assert rmse["lstm"] < rmse["cycle11"]
    assert rmse["lstm"] < 1.5 * rmse["ar9"]
    if plot:
        assert (tmp_path / "sunspots.png").stat().st_size > 20_000


def test_token_tags_come_from_whole_file_tokenization(load_example):
    tagger = load_example("tag_python_tokens")
    source = 'x = 1  # hi\ns = """a\nb"""\ny = f"{x}!" + x.y\n'
    tagged = tagger.tag_source(source)
    letters = ["".join(tagger.TAGS[t] for t in tags) for _, tags in tagged]
    assert [line for line, _ in tagged] == source.splitlines()
    assert letters == [
        "N.O.9..CCCC",       # x = 1  # hi
        "N.O.SSSS",          # s = """a   (a string that goes on to the next line)
        "SSSS",              # b"""
        "N.O.SSSSSSS.O.NON",  # y = f"{x}!" + x.y   (an f-string is one STRING, on every Python version)
    ]


def test_bidirectional_tagger_learns_and_beats_left_to_right_on_strings(tmp_path, capsys, load_example):
    tagger = load_example("tag_python_tokens")
    args = ["--packages", "json", "--test-every", "2", "--max-len", "40", "--epochs", "2", "--lr", "2e-2",
            "--batch-size", "16", "--compare", "--show", "2", "--no-progress", "--out", str(tmp_path)]
    assert tagger.main(args) == 0
    out = capsys.readouterr().out
    metrics = json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8"))
    majority, bi, uni = (metrics[k] for k in ("majority", "bidirectional", "unidirectional"))
    assert bi["accuracy"] > majority["accuracy"] + 0.35          # about 80% against 28% on this budget
    assert uni["accuracy"] > majority["accuracy"] + 0.2
    assert bi["per_tag"]["STRING"] > uni["per_tag"]["STRING"]    # the right context marks string prefixes, docstrings
    assert (tmp_path / "tagger.npz").stat().st_size > 0
    assert "code" in out and "bidir" in out and "unidi" in out
    assert (tmp_path / "tagged.txt").read_text(encoding="utf-8").count("truth") == 2
