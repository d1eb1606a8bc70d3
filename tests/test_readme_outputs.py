"""The outputs quoted in README.md/docs are what the current code prints (scripts/readme_outputs.py).

The fast block (the article check) is rerun here; CI reruns every block with ``--check`` after the suite.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

ROOT = os.path.join(os.path.dirname(__file__), os.pardir)


@pytest.fixture(scope="module")
def readme_outputs():
    spec = importlib.util.spec_from_file_location("readme_outputs", os.path.join(ROOT, "scripts", "readme_outputs.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_generated_block_names_a_known_command(readme_outputs):
    names = [m["name"] for path in readme_outputs.documents()
             for m in readme_outputs.BLOCK.finditer(path.read_text(encoding="utf-8"))]
    assert "article_check" in names and "char_lm" in names
    assert set(names) <= set(readme_outputs.COMMANDS)


def test_the_quoted_article_check_is_what_the_command_prints(readme_outputs, capsys):
    assert readme_outputs.main(["--check", "--only", "article_check"]) == 0, capsys.readouterr().out


def test_drift_ignores_timings_and_rounding_but_not_figures(readme_outputs):
    quoted = "```text\ntrained 600 steps in 49.6 s (83 ms/step)\nvalidation loss: 4.649 -> 1.426 nats/char\n" \
             "U  8.88e-16  2.06e-16  pass\n```\n"
    same = quoted.replace("49.6 s (83", "158.1 s (263").replace("8.88e-16", "1.11e-15")
    assert readme_outputs.drift(quoted, same, "char_lm") == []
    worse = quoted.replace("1.426", "1.626")
    assert readme_outputs.drift(quoted, worse, "char_lm")
    failed = quoted.replace("pass", "FAIL")
    assert readme_outputs.drift(quoted, failed, "article_check")
