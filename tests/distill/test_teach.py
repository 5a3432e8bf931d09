"""`amal teach`: a saved teacher (and snapshots) loads with weights_only and plugs into `teachers[i].path`."""

import subprocess
import sys

import torch

from amal.distill.teachers import load_teacher


def _amal(*args):
    return subprocess.run([sys.executable, "-m", "amal.cli", *args], capture_output=True, text=True, timeout=300)


def test_teach_with_snapshots_then_use_as_teachers(tmp_path):
    out = tmp_path / "t.pt"
    common = ["--set", "data.name=synthetic-gmm", "--set", "data.n_train=400", "--set", "teachers.0.train.epochs=3"]
    r = _amal("teach", *common, "--out", str(out), "--snapshots", "1,2")
    assert r.returncode == 0, r.stderr
    snaps = [tmp_path / "t-epoch1.pt", tmp_path / "t-epoch2.pt"]
    assert out.exists() and all(p.exists() for p in snaps)
    t1, t2 = load_teacher(str(snaps[0])), load_teacher(str(snaps[1]))
    x = torch.randn(4, 14)
    assert not torch.equal(t1(x), t2(x))  # different epochs, different weights
    r = _amal("train", *common, "--set", f"out_dir={tmp_path}", "--set", "name=multi", "--set", "train.epochs=1",
              "--set", f"teachers=[{{path: {snaps[0]}}}, {{path: {snaps[1]}}}, {{path: {out}}}]")
    assert r.returncode == 0, r.stderr
    lam = torch.load(tmp_path / "multi" / "student" / "lambda.pt", weights_only=True)
    assert lam["columns"] == ["ce", "kd0", "kd1", "kd2"]  # one Λ column per teacher


def test_teach_rejects_bad_snapshot_epochs(tmp_path):
    r = _amal("teach", "--set", "teachers.0.train.epochs=2", "--out", str(tmp_path / "t.pt"), "--snapshots", "5")
    assert r.returncode == 2 and "snapshot epochs [5]" in r.stderr


def test_teacher_with_wrong_class_count_is_refused(tmp_path):
    out = tmp_path / "t.pt"
    assert _amal("teach", "--set", "data.name=synthetic-gmm", "--set", "data.n_train=200",
                 "--set", "teachers.0.train.epochs=1", "--out", str(out)).returncode == 0
    r = _amal("train", "--set", f"out_dir={tmp_path}", "--set", f"teachers.0.path={out}", "--set", "train.epochs=1")
    assert r.returncode == 2 and "expects inputs of shape (14,) but the data has (64,)" in r.stderr
