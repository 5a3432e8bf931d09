"""`amal rules train` / `amal rules lfs`: end to end on synthetic data, resume guard, one-line errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
SYN = ["--set", "data.name=synthetic", "--set", "data.n_labelled=40", "--set", "data.n_val=150",
       "--set", "data.n_test=200", "--set", "data.synthetic={n: 800}", "--set", "train.epochs=2",
       "--set", "teacher.epochs=3"]


def _amal(*args):
    env = {k: v for k, v in os.environ.items() if k != "AMAL_DATA_DIR"}  # the data folder is always explicit
    return subprocess.run([sys.executable, "-m", "amal.cli", *args], capture_output=True, text=True, timeout=300,
                          env=env)


def _one_line_error(r, message):
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("amal: error:") and message in lines[0], r.stderr


def test_rules_train_end_to_end_and_resume_guard(tmp_path):
    args = ["rules", "train", *SYN, "--set", f"out_dir={tmp_path}", "--set", "name=syn"]
    r = _amal(*args)
    assert r.returncode == 0, r.stderr
    assert "amal: val macro-F1" in r.stdout and "test macro-F1" in r.stdout
    run = tmp_path / "syn" / "student"
    summary = json.load(open(run / "summary.json"))
    assert summary["method"] == "amal" and set(summary["lambda"]) == {"ce", "lm", "kd"}
    for f in ("metrics.jsonl", "lambda.pt", "rules.pt", "instances.pt", "best.pt"):
        assert (run / f).exists(), f
    assert (tmp_path / "syn" / "teacher1" / "best.pt").exists()
    again = _amal(*args)
    _one_line_error(again, "--resume")
    assert _amal(*args, "--resume").returncode == 0
    _one_line_error(_amal(*args, "--resume", "--set", "amal.every=5"), "amal.every")
    report = _amal("report", str(tmp_path / "syn"), "--out", str(tmp_path / "rep"))
    assert report.returncode == 0, report.stderr
    assert "λ against the rules" in (tmp_path / "rep" / "report.md").read_text()


@pytest.mark.parametrize("args, message", [
    (["--set", "rules.bogus=1"], "unknown config key 'rules.bogus'"),
    (["--set", "method=magic"], "method must be one of"),
    (["--set", "label_model.name=dawid"], "unknown label model 'dawid'"),
    (["--set", "label_model.options={epochz: 3}"], "unknown config key 'label_model.options.epochz'"),
    (["--set", "data.name=sms", "--set", "data.lfs=nope"], "unknown LF set 'nope'"),
    (["--set", "data.lfs=sms"], "data.lfs does not apply to synthetic data"),
    (["--set", "data.n_test=100000"], "leaves no unlabelled data"),
    (["--set", "data.name=sms", "--set", "data.path=/no/such/folder"], "/no/such/folder"),
    (["--set", "data.name=youtube", "--set", "data.path=null"], "AMAL_DATA_DIR"),
    (["--config", "missing.yaml"], "config file not found"),
])
def test_rules_errors_are_one_line(tmp_path, args, message):
    base = [] if "--config" in args else SYN  # synthetic data: no files needed
    _one_line_error(_amal("rules", "train", *base, *args, "--set", f"out_dir={tmp_path}"), message)


def test_rules_lfs_synthetic():
    r = _amal("rules", "lfs", "--dataset", "synthetic")
    assert r.returncode == 0, r.stderr
    assert "| **all LFs** |" in r.stdout and "accuracy (L)" in r.stdout


@pytest.mark.skipif(not DATA.is_dir(), reason="real data folder ../shared/data not present")
def test_rules_lfs_real_sms():
    r = _amal("rules", "lfs", "--dataset", "sms", "--data-dir", str(DATA))
    assert r.returncode == 0, r.stderr
    assert "kw_prize" in r.stdout and "uncovered unlabelled rows dropped" in r.stdout


def test_help():
    for cmd in (["rules", "--help"], ["rules", "train", "--help"], ["bench", "rules", "--help"]):
        r = _amal(*cmd)
        assert r.returncode == 0 and "usage: amal" in r.stdout
