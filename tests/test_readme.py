"""The README's API tour runs as written (with fewer training steps)."""

import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_readme_python_blocks_run(monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.chdir(ROOT)  # the tour loads data/checkpoints/... relative to the repository
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        blocks = re.findall(r"```python\n(.*?)```", f.read(), re.S)
    assert len(blocks) >= 2
    code = "\n".join(blocks)
    shortened = code.replace(".train(200)", ".train(5, progress=False)")
    shortened = shortened.replace(".train(20)", ".train(1, progress=False)")
    assert shortened != code  # the replacements found their targets
    exec(compile(shortened, "README.md", "exec"), {"__name__": "readme"})
