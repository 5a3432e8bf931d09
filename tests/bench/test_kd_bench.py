"""`amal bench kd --suite digits --seeds 1` end to end (few epochs), and the table maths."""

import json
import subprocess
import sys

import pytest

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
                cfg = build_config(suite.base, [*sc.overrides, *m.overrides, "data.data_dir=/some/where"], seed=0)
                assert cfg.method in METHODS


def _dry_run(tmp_path, *extra):
    r = subprocess.run(
        [sys.executable, "-m", "amal.cli", "bench", "kd", "--suite", "cifar100-paper", "--dry-run",
         "--out-dir", str(tmp_path), *extra], capture_output=True, text=True, timeout=1200,
    )
    assert r.returncode == 0, r.stderr
    return (tmp_path / "cifar100-paper" / "dry-run-results" / "kd_cifar100-paper.md").read_text()


def test_cifar100_paper_dry_run_one_scenario(tmp_path):
    page = _dry_run(tmp_path, "--scenario", "resnet56-resnet8")
    assert "| AMAL |" in page and "resnet56-resnet8" in page


@pytest.mark.slow
def test_cifar100_paper_dry_run_everything(tmp_path):
    """All four paper configurations build and run (≈ 4 min on 2 cores)."""
    page = _dry_run(tmp_path)
    for sc in ("resnet110-resnet8", "resnet56-resnet8", "wrn16-3-wrn16-1", "wrn16-8-snapshots"):
        assert f"## {sc}" in page
    lam = json.loads((tmp_path / "cifar100-paper" / "wrn16-8-snapshots-s0" / "amal" / "summary.json").read_text())
    assert list(lam["lambda"]) == ["ce", "kd0", "kd1", "kd2", "kd3"]  # four snapshots, four KD columns
