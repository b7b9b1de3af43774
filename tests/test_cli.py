"""The console script: --help, and the demo's table and self-contained HTML report."""

import os
import re
import subprocess
import sys

from toolkit.cli import main


def test_help_lists_the_demo():
    out = subprocess.run([sys.executable, "-m", "toolkit.cli", "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert "demo" in out and "usage: mirrorlab" in out


def test_demo_prints_table_and_writes_report(tmp_path, capsys):
    out = tmp_path / "report.html"
    assert main(["demo", "--out", str(out), "--steps", "150"]) == 0
    printed = capsys.readouterr().out
    assert str(out) in printed
    rows = [line for line in printed.splitlines() if line.startswith(("bandit", "FrozenLake"))]
    assert len(rows) == 8
    # magnetic MD reaches the KL-regularised optimum: its KL(π*‖π) column is ~0
    magnetic = next(r for r in rows if "magnetic" in r)
    kl_col = float(re.split(r"\s{2,}", magnetic.strip())[3].split()[0])
    assert kl_col < 1e-8
    # policy iteration's value gap on FrozenLake is exactly 0 after 150 iterations
    pi_row = next(r for r in rows if "policy iteration" in r and "soft" not in r)
    assert float(pi_row.split()[-2]) == 0.0
    html = out.read_text()
    assert os.path.getsize(out) > 1_000_000  # plotly.js is embedded: opens offline
    assert "Bandit: policy entropy" in html and "FrozenLake: value gap" in html


def test_demo_rejects_bad_steps(capsys):
    import pytest

    with pytest.raises(SystemExit):
        main(["demo", "--steps", "0"])
    assert "--steps" in capsys.readouterr().err
