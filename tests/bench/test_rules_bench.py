"""`amal bench rules --dataset synthetic --seeds 1` end to end (few epochs), and the table maths."""

import json
import subprocess
import sys

from amal.bench.rules import METHODS, Row, bench_config, summarise
from amal.weak.config import RULE_METHODS


def test_bench_rules_synthetic_end_to_end(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "amal.cli", "bench", "rules", "--dataset", "synthetic", "--seeds", "1", "--epochs",
         "3", "--out-dir", str(tmp_path / "runs"), "--results-dir", str(tmp_path / "results")],
        capture_output=True, text=True, timeout=600,
    )
    assert r.returncode == 0, r.stderr
    page = (tmp_path / "results" / "rules_synthetic.md").read_text()
    for m in METHODS:
        if m.label_model != "snorkel":
            assert f"| {m.label} |" in page, m.label
    assert "amal bench rules --dataset synthetic --seeds 1 --epochs 3" in page
    for section in ("## What Λ learned", "## LF analysis (seed 0)", "## Configuration", "AUC within class",
                    "Training time relative to LM + end model (hard labels)"):
        assert section in page
    assert "| **all LFs** |" in page and "accuracy (U, hidden gold)" in page
    assert (tmp_path / "results" / "rules_synthetic" / "lambda_lm.png").exists()
    assert (tmp_path / "results" / "rules_synthetic" / "lf_trust.png").exists()
    rows = json.loads((tmp_path / "runs" / "synthetic" / "rows.json").read_text())
    assert {row["method"] for row in rows} >= {"AMAL-rules", "LM + end model (hard labels)", "Supervised (L∪V)"}
    grid = [row for row in rows if row["method"] == "Fixed mix (w grid on val)"]
    assert len(grid) == 1 and grid[0]["note"].startswith("w=")


def test_summary_mean_and_std():
    rows = [Row("A", seed, 0.5, f1, 0.5, 0.9, 1.0, 10.0, "") for seed, f1 in enumerate([0.7, 0.8, 0.9])]
    (s,) = summarise(rows)
    assert s["n"] == 3 and s["test_f1"] == "0.8000 ± 0.1000" and abs(s["test_f1_mean"] - 0.8) < 1e-12


def test_every_bench_config_is_valid():
    for name in ("sms", "youtube", "synthetic"):
        cfg = bench_config(name, 0, "runs/bench", "/some/where", None, False)
        assert cfg.data.name == name
    assert {m.method for m in METHODS} == set(RULE_METHODS)


def test_bench_rules_variant_with_overrides_and_method_filter(tmp_path):
    base = [sys.executable, "-m", "amal.cli", "bench", "rules", "--dataset", "synthetic", "--seeds", "1",
            "--out-dir", str(tmp_path / "runs"), "--results-dir", str(tmp_path / "results"), "--method", "amal",
            "--method", "lm_end_hard", "--set", "train.epochs=2"]
    r = subprocess.run(base, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "--tag" in r.stderr  # a variant must not overwrite the main page
    r = subprocess.run([*base, "--tag", "short"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    page = (tmp_path / "results" / "rules_synthetic-short.md").read_text()
    assert "--set train.epochs=2 --tag short" in page and "| AMAL-rules |" in page
    assert "| JL (unit weights) |" not in page  # filtered out
    assert (tmp_path / "runs" / "synthetic-short" / "rows.json").exists()
