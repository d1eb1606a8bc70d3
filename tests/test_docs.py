"""The documentation cannot rot: its code runs, its pictures match the code, and the site builds.

* Every fenced Python block of the pages under ``docs/`` runs, page by page, in order, in one namespace per
  page (a fresh working folder each). A ``pycon`` block is a doctest (``>>>`` lines and the output they
  show, checked with ``ELLIPSIS`` and ``NORMALIZE_WHITESPACE``); a ``python`` block must run without error.
  Blocks of other languages (``bash``, ``text``) are not run, nor a block right after a
  ``<!-- not run: why -->`` comment (an excerpt that needs ``mpiexec`` or names defined elsewhere).
* The DOT text behind each committed picture (``docs/img/*.dot``) is what ``docs/make_figures.py`` draws
  from the code today.
* Every public module of the package has an API page, and ``mkdocs build --strict`` passes (skipped
  when MkDocs is not installed: ``pip install -e ".[docs]"``).
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import tinygrad_rnn

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```\s*$", re.DOTALL | re.MULTILINE)
PAGES = sorted(p for p in DOCS.rglob("*.md") if FENCE.search(p.read_text(encoding="utf-8")))


def blocks(page: Path) -> list[tuple[str, str, int]]:
    """(language, code, line number) of each fenced python/pycon block of a page that is meant to run.

    A block right after an HTML comment ``<!-- not run: why -->`` is an excerpt (it needs ``mpiexec``, or
    names defined elsewhere) and is skipped; the comment does not show on the site.
    """
    text = page.read_text(encoding="utf-8")
    found = []
    for m in FENCE.finditer(text):
        before = text[:m.start()].rstrip().rsplit("\n", 1)[-1]
        if m[1] in ("python", "pycon", "py") and not before.startswith("<!-- not run"):
            found.append((m[1], m[2], text.count("\n", 0, m.start(2)) + 1))
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_page_code_runs_and_shows_its_output(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(ROOT))
    namespace: dict = {"__name__": "__docs__"}
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    parser = doctest.DocTestParser()
    name = str(page.relative_to(DOCS))
    for language, code, line in blocks(page):
        if language == "pycon":
            test = parser.get_doctest(code, namespace, f"{name}:{line}", str(page), line - 1)
            result = runner.run(test, clear_globs=False)
            namespace.update(test.globs)  # (a DocTest works on a copy of the namespace)
            assert result.failed == 0, f"{name}, the block at line {line}: {result.failed} example(s) failed (above)"
        else:
            try:
                exec(compile(code, f"{name}:{line}", "exec"), namespace)  # noqa: S102 - the page's own code
            except Exception as exc:  # noqa: BLE001 - reported with the block's place
                pytest.fail(f"{name}, the python block at line {line} raised {type(exc).__name__}: {exc}")


@pytest.mark.parametrize("module", ["tinygrad_rnn", "tinygrad_rnn.viz"])
def test_module_docstring_examples(module: str) -> None:
    failed, attempted = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert attempted and not failed


def test_the_tour_has_code_to_check() -> None:
    tour = [p for p in PAGES if p.parent.name == "tour"]
    assert len(tour) >= 5
    assert sum(len(blocks(p)) for p in tour) >= 15


LOOSE_FIGURES = {"capture_program"}  # the replay program of tinygrad_rnn.capture, read from its internals


def test_pictures_match_the_code() -> None:
    spec = importlib.util.spec_from_file_location("make_figures", DOCS / "make_figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, dot in module.figures().items():
        committed = DOCS / "img" / f"{name}.dot"
        assert committed.exists(), f"docs/img/{name}.dot is missing: run python docs/make_figures.py"
        if name in LOOSE_FIGURES:  # drawn from another module's internals: it must draw, not stay identical
            continue
        assert committed.read_text(encoding="utf-8") == dot, (
            f"the tape behind docs/img/{name}.svg changed: run python docs/make_figures.py (needs Graphviz) "
            "and commit docs/img/")
        assert (DOCS / "img" / f"{name}.svg").exists()


def test_every_public_module_has_an_api_page() -> None:
    api = "\n".join(p.read_text(encoding="utf-8") for p in (DOCS / "api").glob("*.md"))
    documented = set(re.findall(r"^::: ([\w.]+)", api, re.MULTILINE))
    modules = {m.name for m in pkgutil.walk_packages(tinygrad_rnn.__path__, "tinygrad_rnn.")
               if not any(part.startswith("_") for part in m.name.split("."))}
    missing = sorted(m for m in modules if m not in documented and not any(d.startswith(m + ".") for d in documented))
    assert not missing, f"public modules without an API page (add '::: name' to a page of docs/api/): {missing}"


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    pytest.importorskip("mkdocstrings_handlers.python")
    mkdocs = [sys.executable, "-m", "mkdocs"]
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1", PYTHONPATH=str(ROOT))
    result = subprocess.run([*mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")], check=False,
                            cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for page in ("index.html", "tour/tape/index.html", "api/viz/index.html"):
        assert (tmp_path / "site" / page).exists()
    assert "to_dot" in (tmp_path / "site" / "api" / "viz" / "index.html").read_text(encoding="utf-8")
