"""Real PyTorch RNN programs, kept in tests/programs/ with only their imports changed, run on small offline data.

* ``*_runs`` tests (only without torch; with torch the ``*_matches_torch`` tests check the same and more): the
  kept program runs under tinygrad_rnn, writes what it writes and its loss goes down.
* ``*_matches_torch`` tests (torch installed): the same program runs under torch (its original imports) and
  under tinygrad_rnn from the same initial weights and data order (tests/programs/driver.py records torch's
  random draws and replays them), in float64; every loss the program computes agrees to ≤ 1e-10 over the
  first steps.
* ``test_only_imports_differ``: the kept programs differ from their sources only in import lines (and the
  provenance header).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import tinygrad_rnn as tg

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAMS = os.path.join(HERE, "programs")
DRIVER = os.path.join(PROGRAMS, "driver.py")
ROOT = os.path.dirname(HERE)

TIME_SEQ = os.path.join(PROGRAMS, "time_sequence_prediction", "train.py")
WORD_LM = os.path.join(PROGRAMS, "word_language_model", "main.py")
CHAR_RNN = os.path.join(PROGRAMS, "char_rnn_classification", "char_rnn_classification_tutorial.py")


def run(framework: str, program: str, rundir, args: list[str], record=None, replay=None) -> dict:
    out = os.path.join(str(rundir), "result.json")
    cmd = [sys.executable, DRIVER, "--framework", framework, "--program", program, "--rundir", str(rundir),
           "--out", out, "--float64"]
    if record:
        cmd += ["--record", str(record)]
    if replay:
        cmd += ["--replay", str(replay)]
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", MPLBACKEND="Agg",
               PYTHONHASHSEED="0")  # the tutorial lists a set of labels: same order in both runs
    proc = subprocess.run([*cmd, "--", *args], capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 0, f"{framework} run of {os.path.basename(program)} failed:\n{proc.stderr[-4000:]}"
    with open(out) as f:
        result = json.load(f)
    result["stdout"] = proc.stdout
    return result


def needs_matplotlib(program: str) -> None:
    if program in (TIME_SEQ, CHAR_RNN):  # they plot (the examples extra has matplotlib)
        pytest.importorskip("matplotlib")


def alone(program: str, tmp_path, args: list[str], prepare) -> dict:
    """Run under tinygrad_rnn alone (its own random draws): the check for machines without torch."""
    needs_matplotlib(program)
    if importlib.util.find_spec("torch") is not None:
        pytest.skip("torch is installed: the *_matches_torch test runs this program and checks the same")
    prepare(tmp_path, "tinygrad")
    return run("tinygrad", program, tmp_path, args)


def both(program: str, tmp_path, args: list[str], prepare) -> tuple[dict, dict]:
    """Run under torch (recording its draws), then under tinygrad_rnn replaying them."""
    pytest.importorskip("torch")
    needs_matplotlib(program)
    draws = tmp_path / "draws.npz"
    prepare(tmp_path / "torch", "torch")
    ref = run("torch", program, tmp_path / "torch", args, record=draws)
    prepare(tmp_path / "tg", "tinygrad")
    got = run("tinygrad", program, tmp_path / "tg", args, replay=draws)
    assert got["draws_used"] == got["draws_recorded"] > 0
    assert len(got["losses"]) == len(ref["losses"]) > 0
    return ref, got


def agreement(ref: dict, got: dict, first: int) -> float:
    a, b = np.array(ref["losses"][:first]), np.array(got["losses"][:first])
    return float(np.max(np.abs(a - b) / np.maximum(1.0, np.abs(a))))


# ---------------------------------------------------------------- time_sequence_prediction (LSTMCell, LBFGS)

def sine_data() -> np.ndarray:
    """generate_sine_wave.py's recipe, small: 8 waves of 40 points with random phase."""
    rng = np.random.RandomState(2)
    t, length, n = 20, 40, 8
    x = np.empty((n, length), "int64")
    x[:] = np.array(range(length)) + rng.randint(-4 * t, 4 * t, n).reshape(n, 1)
    return np.sin(x / 1.0 / t).astype("float64")


def prepare_sine(rundir, framework: str) -> None:
    os.makedirs(rundir, exist_ok=True)
    path = os.path.join(str(rundir), "traindata.pt")
    if framework == "torch":
        import torch

        with open(path, "wb") as f:
            torch.save(sine_data(), f)
    else:
        with open(path, "wb") as f:
            tg.save(sine_data(), f)


TIME_SEQ_ARGS = ["--steps", "2"]


def check_time_sequence_prediction(got: dict, rundir) -> None:
    assert got["stdout"].count("test loss:") == 2
    assert os.path.exists(os.path.join(str(rundir), "predict1.pdf"))
    losses = got["losses"]
    assert all(math.isfinite(v) for v in losses) and losses[-2] < losses[0]


def test_time_sequence_prediction_runs(tmp_path):
    check_time_sequence_prediction(alone(TIME_SEQ, tmp_path, TIME_SEQ_ARGS, prepare_sine), tmp_path)


def test_time_sequence_prediction_matches_torch(tmp_path):
    ref, got = both(TIME_SEQ, tmp_path, TIME_SEQ_ARGS, prepare_sine)
    check_time_sequence_prediction(got, tmp_path / "tg")
    # every closure evaluation of LBFGS (20 per step) and each step's test loss, over 2 steps
    assert agreement(ref, got, len(ref["losses"])) <= 1e-10


# ---------------------------------------------------------------- word_language_model (2-layer LSTM/GRU/RNN LM)

WORDS = ["the", "a", "cat", "dog", "sat", "ran", "on", "under", "mat", "log", "big", "small", "red", "quick"]


def prepare_corpus(rundir, framework: str) -> None:
    rng = np.random.RandomState(0)
    folder = os.path.join(str(rundir), "corpus")
    os.makedirs(folder, exist_ok=True)
    for name, lines in (("train.txt", 30), ("valid.txt", 8), ("test.txt", 8)):
        with open(os.path.join(folder, name), "w", encoding="utf8") as f:
            f.writelines(" ".join(rng.choice(WORDS, size=rng.randint(4, 9))) + "\n" for _ in range(lines))


def lm_args(model: str) -> list[str]:
    return ["--data", "corpus", "--model", model, "--epochs", "2", "--emsize", "12", "--nhid", "12",
            "--nlayers", "2", "--bptt", "6", "--batch_size", "4", "--dropout", "0", "--log-interval", "5",
            "--lr", "5", "--save", "model.pt"]


def check_word_language_model(got: dict, rundir) -> None:
    # trained 2 epochs, saved the model with torch.save(model, f), loaded it back under safe_globals, tested
    assert "End of training" in got["stdout"] and os.path.exists(os.path.join(str(rundir), "model.pt"))
    assert all(math.isfinite(v) for v in got["losses"])


def test_word_language_model_runs(tmp_path):
    check_word_language_model(alone(WORD_LM, tmp_path, lm_args("LSTM"), prepare_corpus), tmp_path)


@pytest.mark.parametrize("model", ["LSTM", "GRU", "RNN_TANH"])
def test_word_language_model_matches_torch(tmp_path, model):
    ref, got = both(WORD_LM, tmp_path, lm_args(model), prepare_corpus)
    check_word_language_model(got, tmp_path / "tg")
    # every training batch's loss, then the validation and test losses (evaluate) after training
    assert agreement(ref, got, len(ref["losses"])) <= 1e-10


# ---------------------------------------------------------------- char_rnn_classification tutorial (nn.RNN)

LANGUAGES = {"Vowelish": "aeiouylmn", "Hardish": "kgtdrzx", "Mixed": "abcdefghstw"}


def prepare_names(rundir, framework: str) -> None:
    rng = np.random.RandomState(1)
    folder = os.path.join(str(rundir), "data", "names")
    os.makedirs(folder, exist_ok=True)
    for lang, letters in LANGUAGES.items():
        names = ["".join(rng.choice(list(letters), size=rng.randint(3, 7))).capitalize() for _ in range(25)]
        with open(os.path.join(folder, f"{lang}.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(names) + "\n")


def check_char_rnn_classification(got: dict) -> None:
    # 75 names: random_split gives 64 for training, one batch of 64 per epoch, 27 epochs
    assert "train examples = 64, validation examples = 11" in got["stdout"] and "training took" in got["stdout"]
    per_epoch = np.array(got["losses"]).reshape(27, 64).mean(axis=1)
    assert per_epoch[-1] < per_epoch[0]


def test_char_rnn_classification_runs(tmp_path):
    check_char_rnn_classification(alone(CHAR_RNN, tmp_path, [], prepare_names))


def test_char_rnn_classification_matches_torch(tmp_path):
    ref, got = both(CHAR_RNN, tmp_path, [], prepare_names)
    check_char_rnn_classification(got)
    assert agreement(ref, got, len(ref["losses"])) <= 1e-10


# ---------------------------------------------------------------- the kept programs are the originals

# SHA-256 of the published files (pytorch/examples @ 77f55b9, PyTorchKorea/tutorials-kr @ 84b7db6)
ORIGINAL_SHA256 = {
    "time_sequence_prediction/train.py": "3a5d6603cecf7bbf76f96a515dc6c9377849adeefe783edaf6f661bd02e80330",
    "word_language_model/main.py": "391de12bb7c6e07dbb105d47d017632bf80c01d2e5b25adbf83da9cdcdd5a862",
    "word_language_model/model.py": "e4451a33e9b16953004bc639d736d14f42a2b21f2939ccabe4cff10d3c40b74c",
    "word_language_model/data.py": "15784815a6bd18e9b25eadf6ae049915f88d4fb8faebeba9d83ae6ec8e19883d",
    "char_rnn_classification/char_rnn_classification_tutorial.py":
        "2feec4c79bafccb41265088b7f4b1e75e05ef38ff8eaad1c342dc6a4905e6864",
}


def test_only_imports_differ():
    """Each kept program, without its 3-line provenance header and with ``tinygrad_rnn`` turned back into
    ``torch`` in its import lines (and nowhere else), is byte for byte the published file."""
    sys.path.insert(0, PROGRAMS)
    try:
        from driver import IMPORT_LINE, to_torch
    finally:
        sys.path.pop(0)
    for name, digest in ORIGINAL_SHA256.items():
        with open(os.path.join(PROGRAMS, name), encoding="utf-8") as f:
            lines = f.read().splitlines(keepends=True)
        header = [line for line in lines[:5] if line.startswith(("# Source:", "# BSD", "# Kept"))]
        assert len(header) == 3, name
        body = [line for line in lines[:5] if line not in header] + lines[5:]
        changed = [line for line in body if "tinygrad_rnn" in line]
        assert changed and all(IMPORT_LINE.match(line) for line in changed), (name, changed)
        original = to_torch("".join(body)).encode("utf-8")
        assert hashlib.sha256(original).hexdigest() == digest, name
