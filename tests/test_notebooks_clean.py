"""Notebooks are stored without outputs (they are executed by nbmake in the same run)."""

import glob
import json
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = sorted(glob.glob(os.path.join(ROOT, "notebooks", "*.ipynb"))
                   + glob.glob(os.path.join(ROOT, "tests", "**", "*.ipynb"), recursive=True))


def test_there_are_tutorials():
    assert len([p for p in NOTEBOOKS if os.sep + "notebooks" + os.sep in p]) >= 5


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_notebook_is_stored_without_outputs(path):
    with open(path, encoding="utf-8") as f:
        nb = json.load(f)
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"cell {i} of {path} has outputs"
            assert cell.get("execution_count") is None, f"cell {i} of {path} was executed"
