"""`amal bench kd --suite digits --seeds 1` end to end (few epochs), and the table maths."""

import subprocess
import sys

from amal.bench.kd import SUITES, RunRow, build_config, summarise
from amal.train.config import METHODS


def test_bench_digits_end_to_end(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "amal.cli", "bench", "kd", "--suite", "digits", "--seeds", "1", "--epochs", "3",
         "--out-dir", str(tmp_path / "runs"), "--results-dir", str(tmp_path / "results")],
        capture_output=True, text=True, timeout=600,
    )
    assert r.returncode == 0, r.stderr
    page = (tmp_path / "results" / "kd_digits.md").read_text()
    for label in ("| CE |", "| CE (train∪val) |", "| KD λ=0.9 |", "| KD (λ grid on val) |", "| AMAL |"):
        assert label in page
    assert "amal bench kd --suite digits --seeds 1 --epochs 3" in page
    assert (tmp_path / "results" / "kd_digits" / "clean.png").exists()
    assert (tmp_path / "runs" / "digits" / "clean-s0" / "amal" / "lambda").is_dir()  # Λ snapshots per sweep


def test_summary_mean_and_std():
    rows = [RunRow("s", "A", seed, 0.5, acc, 1.0, 10.0, "") for seed, acc in enumerate([0.7, 0.8, 0.9])]
    (s,) = summarise(rows)
    assert s["n"] == 3 and s["test"] == "0.8000 ± 0.1000" and abs(s["test_mean"] - 0.8) < 1e-12


def test_every_suite_config_is_valid():
    for suite in SUITES.values():
        for sc in suite.scenarios:
            for m in sc.methods:
                cfg = build_config(suite.base, [*sc.overrides, *m.overrides], seed=0)
                assert cfg.method in METHODS
