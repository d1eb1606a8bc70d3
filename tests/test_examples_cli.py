"""Every example follows one command-line convention, and the main job never loses a run.

* ``--help`` shows ``--device``, ``--seed``, ``--out``, ``--threads`` with their defaults;
* a bad option or an unusable device is one line on stderr and exit code 2, never a traceback;
* char_lm: ``--resume`` continues bit-identically, refuses contradicting options or other data, an existing
  checkpoint is never overwritten silently, and SIGTERM mid-run writes a checkpoint that resumes exactly.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tinygrad_rnn.backend import cuda_unavailable_reason

ROOT = os.path.join(os.path.dirname(__file__), os.pardir)
EXAMPLES = ["char_lm", "sunspots", "tag_python_tokens", "vanishing_gradients", "article_check", "custom_cell", "g2p"]


def run(script: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, os.path.join(ROOT, "examples", f"{script}.py"), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)


@pytest.mark.parametrize("script", EXAMPLES)
def test_help_lists_the_common_options_with_defaults(script):
    result = run(script, "--help")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    for option in ("--device DEVICE", "--seed SEED", "--out OUT", "--threads THREADS"):
        assert option in text
    assert "(default: cpu)" in text and "(default: 1)" in text


@pytest.mark.parametrize("script", EXAMPLES)
@pytest.mark.parametrize("bad", [["--threads", "0"], ["--device", "tpu"], ["--seed", "x"], ["--no-such-option"]])
def test_bad_options_are_one_line_and_exit_2(script, bad):
    result = run(script, *bad)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{script}.py: error:" in lines[0], result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(cuda_unavailable_reason() is None, reason="a GPU is present: --device cuda works here")
@pytest.mark.parametrize("script", EXAMPLES)
def test_cuda_without_a_gpu_is_one_clear_line(script):
    result = run(script, "--device", "cuda")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--device cuda" in lines[0] and "CuPy" in lines[0]


def test_unwritable_out_is_refused_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run("char_lm", "--out", str(blocker / "run"))
    assert result.returncode == 2 and "--out" in result.stderr and "Traceback" not in result.stderr


# ------------------------------------------------------------------------------------------ char_lm runs

TINY = ["--batch-size", "4", "--seq-len", "16", "--hidden-size", "16", "--embed-size", "8", "--sample-len", "10",
        "--no-progress"]


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text("the quick brown fox jumps over the lazy dog. " * 60, encoding="utf-8")
    return str(path)


def arrays(path) -> dict[str, np.ndarray]:
    with np.load(path) as archive:
        return {name: archive[name] for name in archive.files}


def assert_same_run(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for name in a:
        assert np.array_equal(a[name], b[name]), name


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_resume_continues_bit_identically(tmp_path, text_file, load_example, cell):
    char_lm = load_example("char_lm")
    common = ["--data", text_file, "--cell", cell, *TINY, "--save-every", "0"]
    assert char_lm.main([*common, "--steps", "10", "--out", str(tmp_path / "whole")]) == 0
    # 7 steps: the split falls inside a pass over the text, so the carried state must be restored exactly
    assert char_lm.main([*common, "--steps", "7", "--out", str(tmp_path / "halves")]) == 0
    assert char_lm.main([*common, "--steps", "3", "--out", str(tmp_path / "halves"), "--resume"]) == 0
    whole = arrays(tmp_path / "whole" / "checkpoint.npz")
    halves = arrays(tmp_path / "halves" / "checkpoint.npz")
    assert len(whole["losses"]) == 10
    assert_same_run(whole, halves)


def test_sigterm_writes_a_checkpoint_that_resumes_exactly(tmp_path, text_file):
    common = ["--data", text_file, *TINY, "--save-every", "0"]
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert run("char_lm", *common, "--steps", "200", "--out", str(whole)).returncode == 0
    script = os.path.join(ROOT, "examples", "char_lm.py")
    proc = subprocess.Popen([sys.executable, script, *common, "--steps", "200", "--out", str(parts)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    deadline = time.monotonic() + 60
    while "validation loss before training" not in (line := proc.stdout.readline()):
        assert line and time.monotonic() < deadline, "char_lm did not start training"
    time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the run finished before the signal arrived (very fast machine)")
    assert proc.returncode == 130, err
    done = int(np.load(parts / "checkpoint.npz")["step"])
    assert f"--resume --steps {200 - done}" in err
    resumed = run("char_lm", *common, "--steps", str(200 - done), "--out", str(parts), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert_same_run(arrays(whole / "checkpoint.npz"), arrays(parts / "checkpoint.npz"))


def test_existing_checkpoint_is_not_overwritten_silently(tmp_path, text_file):
    args = ["--data", text_file, *TINY, "--steps", "2", "--out", str(tmp_path)]
    assert run("char_lm", *args).returncode == 0
    before = (tmp_path / "checkpoint.npz").read_bytes()
    again = run("char_lm", *args)
    assert again.returncode == 2 and "--resume" in again.stderr and "--overwrite" in again.stderr
    assert (tmp_path / "checkpoint.npz").read_bytes() == before
    assert run("char_lm", *args, "--overwrite").returncode == 0


def test_resume_refuses_contradicting_options_and_other_data(tmp_path, text_file):
    args = ["--data", text_file, *TINY, "--steps", "2", "--out", str(tmp_path)]
    assert run("char_lm", *args).returncode == 0
    wrong = run("char_lm", *args, "--resume", "--hidden-size", "32")
    assert wrong.returncode == 2 and "--hidden-size 32 contradicts" in wrong.stderr
    other = tmp_path / "other.txt"
    other.write_text("completely different text! " * 80, encoding="utf-8")
    swapped = [a if a != text_file else str(other) for a in args]
    refused = run("char_lm", *swapped, "--resume")
    assert refused.returncode == 2 and "text differs" in refused.stderr


def test_temperature_zero_samples_greedily(tmp_path, text_file, load_example):
    char_lm = load_example("char_lm")
    args = ["--data", text_file, *TINY, "--steps", "2", "--temperature", "0", "--overwrite"]
    assert char_lm.main([*args, "--out", str(tmp_path / "a"), "--seed", "1"]) == 0
    assert char_lm.main([*args, "--out", str(tmp_path / "b"), "--seed", "1"]) == 0
    assert (tmp_path / "a" / "sample.txt").read_text() == (tmp_path / "b" / "sample.txt").read_text()


class _StopAfter:
    """Stands in for cli.StopRequests: a stop is requested at the n-th check (as if Ctrl-C came then)."""

    def __init__(self, n: int):
        self.n, self.checks = n, 0

    @property
    def requested(self) -> bool:
        self.checks += 1
        return self.checks >= self.n

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


@pytest.mark.parametrize("stop_at", [3, 9])  # inside the first model's training, inside the second's
def test_tagger_stopped_and_resumed_equals_an_uninterrupted_run(tmp_path, load_example, monkeypatch, stop_at):
    tagger = load_example("tag_python_tokens")
    args = ["--packages", "json", "--max-lines", "200", "--max-steps", "6", "--epochs", "1", "--batch-size", "8",
            "--embed-size", "4", "--hidden-size", "6", "--compare", "--show", "0", "--no-progress", "--save-every", "2"]
    assert tagger.main([*args, "--out", str(tmp_path / "whole")]) == 0
    checks = iter([_StopAfter(stop_at), _StopAfter(stop_at - 6 if stop_at > 6 else 10**9)])
    monkeypatch.setattr(tagger, "StopRequests", lambda: next(checks))
    assert tagger.main([*args, "--out", str(tmp_path / "parts")]) == 130
    monkeypatch.undo()
    tagger = load_example("tag_python_tokens")
    assert tagger.main([*args, "--out", str(tmp_path / "parts"), "--resume"]) == 0
    assert_same_run(arrays(tmp_path / "whole" / "tagger.npz"), arrays(tmp_path / "parts" / "tagger.npz"))
    whole = (tmp_path / "whole" / "metrics.json").read_text()
    parts = (tmp_path / "parts" / "metrics.json").read_text()
    strip = lambda text: re.sub(r'"train_seconds": [0-9.e-]+', "", text)  # noqa: E731
    assert strip(whole) == strip(parts)


def test_sunspots_resumed_forecast_equals_an_uninterrupted_run(tmp_path, load_example):
    sunspots = load_example("sunspots")
    args = ["--epochs", "4", "--no-plot", "--no-progress", "--hidden-size", "8", "--save-every", "1"]
    assert sunspots.main([*args, "--out", str(tmp_path / "whole")]) == 0
    assert sunspots.main([*args, "--epochs", "1", "--out", str(tmp_path / "parts")]) == 0
    assert sunspots.main([*args, "--epochs", "3", "--out", str(tmp_path / "parts"), "--resume"]) == 0
    assert (tmp_path / "whole" / "forecast.csv").read_text() == (tmp_path / "parts" / "forecast.csv").read_text()
    with pytest.raises(SystemExit) as refused:
        sunspots.main([*args, "--out", str(tmp_path / "parts"), "--resume", "--hidden-size", "9"])
    assert refused.value.code == 2


@pytest.mark.parametrize("content", ["YEAR,SUNACTIVITY\n1700,5\n1701,x\n", "1700,5\n1701,6\n", "YEAR,V\n1700,nan\n",
                                     "YEAR,V\n1700,1\n1702,2\n"])
def test_sunspots_malformed_data_is_one_line(tmp_path, content):
    data = tmp_path / "bad.csv"
    data.write_text(content)
    result = run("sunspots", "--data", str(data), "--out", str(tmp_path / "run"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "--data" in result.stderr
