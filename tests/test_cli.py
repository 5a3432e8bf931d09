"""The CLI: help on every command, one-line errors with a non-zero exit, a tiny end-to-end run."""

import json
import os
import subprocess
import sys

import pytest

from amal.cli import main


def _amal(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "amal.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


@pytest.mark.parametrize("cmd", [[], ["demo"], ["train"]])
def test_help_on_every_command(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([*cmd, "--help"])
    assert e.value.code == 0
    assert "usage: amal" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--config", "missing.yaml"], "config file not found"),
        (["train", "--set", "amal.bogus=1"], "unknown config key 'amal.bogus'"),
        (["train", "--set", "data.name=mnist-9"], "data.name must be one of"),
        (["train", "--set", "teachers.0.path=nowhere.pt"], "teacher file not found"),
    ],
)
def test_errors_are_one_line_without_traceback(tmp_path, args, message):
    r = _amal(*args, "--set", f"out_dir={tmp_path}", cwd=tmp_path)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("amal: error:") and message in lines[0], r.stderr


def test_bad_argument_exits_nonzero(capsys):
    with pytest.raises(SystemExit) as e:
        main(["demo", "--epochs", "many"])
    assert e.value.code == 2


def test_train_end_to_end_and_resume_guard(tmp_path):
    args = ["train", "--set", f"out_dir={tmp_path}", "--set", "name=tiny", "--set", "train.epochs=2",
            "--set", "teachers.0.train.epochs=2", "--set", "data.n_train=300", "--set", "amal.every=1"]
    r = _amal(*args)
    assert r.returncode == 0, r.stderr
    assert "amal: best val acc" in r.stdout
    run = tmp_path / "tiny" / "student"
    rows = [json.loads(line) for line in open(run / "metrics.jsonl")]
    assert [row["epoch"] for row in rows] == [0, 1]
    assert os.path.exists(run / "metrics.csv") and os.path.exists(run / "best.pt")
    summary = json.load(open(run / "summary.json"))
    assert len(summary["sweep_records"]) == 2 and summary["sweeps"] == 2 and set(summary["lambda"]) == {"ce", "kd"}
    again = _amal(*args)
    assert again.returncode == 2 and "--resume" in again.stderr
    resumed = _amal(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    changed = _amal(*args, "--resume", "--set", "amal.every=3")
    assert changed.returncode == 2 and "amal.every" in changed.stderr
