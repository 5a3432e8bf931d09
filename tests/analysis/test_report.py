"""The analysis report on tiny real runs: self-contained HTML, Markdown with PNG files, graceful degradation."""

import argparse
import base64
import copy
import os
import re
import shutil

import numpy as np
import pytest
import torch

pytest.importorskip("matplotlib")

from amal.analysis import add_report_parser, build_report, plots  # noqa: E402
from amal.analysis.report import (  # noqa: E402
    NO_NOISE,
    SECTION_ACCURACY,
    SECTION_CE,
    SECTION_HISTOGRAMS,
    SECTION_KD,
    SECTION_LAMBDA_STATS,
    SECTION_SUMMARY,
)
from amal.analysis.stats import auc as _auc  # noqa: E402
from amal.analysis.stats import ranks as _ranks  # noqa: E402
from amal.distill.recipes import run  # noqa: E402
from amal.errors import AmalError  # noqa: E402
from amal.train.config import RunConfig, TeacherConfig  # noqa: E402

SECTIONS = [SECTION_SUMMARY, SECTION_LAMBDA_STATS, SECTION_ACCURACY, SECTION_HISTOGRAMS, SECTION_KD, SECTION_CE]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An AMAL run with 30% label noise (3 sweeps) and a CE run on the same data, both tiny (~1 s)."""
    out = tmp_path_factory.mktemp("runs")
    old = torch.get_num_threads()
    cfg = RunConfig(name="amal-run", out_dir=str(out), threads=1, progress=False)
    cfg.data.name, cfg.data.n_train, cfg.data.noise = "synthetic-gmm", 300, 0.3  # no scikit-learn import
    cfg.teachers = [TeacherConfig(model={"name": "mlp", "hidden": [32]})]
    cfg.teachers[0].train.epochs = 3
    cfg.train.epochs, cfg.amal.every, cfg.amal.update = 3, 1, "normalized"
    try:
        run(cfg)
        ce = copy.deepcopy(cfg)
        ce.method, ce.name = "ce", "ce-run"
        run(ce)
    finally:
        torch.set_num_threads(old)
    return {"amal": str(out / "amal-run"), "ce": str(out / "ce-run")}


@pytest.fixture(scope="module")
def report(runs, tmp_path_factory):
    """One report comparing both runs: a run folder (with student/) and a student folder, mixed."""
    out = str(tmp_path_factory.mktemp("report"))
    return build_report([runs["amal"], os.path.join(runs["ce"], "student")], out_dir=out, title="tiny runs"), out


def _images(html):
    return re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)


def _md_pngs(md_path):
    with open(md_path, encoding="utf-8") as f:
        refs = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", f.read())
    return [os.path.join(os.path.dirname(md_path), r) for r in refs]


def _read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def test_html_is_self_contained_with_every_section(report):
    paths, out = report
    assert os.path.dirname(paths["html"]) == out and os.path.isfile(paths["html"])
    html = _read(paths["html"])
    assert "<title>tiny runs</title>" in html
    for section in SECTIONS:
        assert f">{section}</h" in html, section
    imgs = _images(html)
    assert len(imgs) == 4  # accuracy (both runs), Λ histograms, λ_kd vs teacher, λ_ce noisy vs clean
    assert all(base64.b64decode(b).startswith(PNG_MAGIC) for b in imgs)
    assert 'src="report-' not in html and '<img src="http' not in html  # nothing outside the file
    assert NO_NOISE not in html and "AUC clean &gt; noisy" in html and "Spearman" in html
    assert "<td>amal</td>" in html and "<td>ce</td>" in html  # one summary row per method
    assert "Λ is fixed in this run (ce)" in html


def test_markdown_references_png_files_beside_it(report):
    paths, out = report
    md = _read(paths["markdown"])
    for section in SECTIONS:
        assert re.search(rf"^##+ {re.escape(section)}$", md, re.M), section
    pngs = _md_pngs(paths["markdown"])
    assert len(pngs) == 4
    for p in pngs:
        assert os.path.dirname(p) == out
        with open(p, "rb") as f:
            assert f.read(8) == PNG_MAGIC
    assert "| amal | amal |" in md and "| ce | ce |" in md


def test_cli_on_ce_run_without_snapshots_still_gets_accuracy_curves(runs, capsys):
    student = os.path.join(runs["ce"], "student")
    assert os.path.isfile(os.path.join(student, "lambda.pt")) and not os.path.isdir(os.path.join(student, "lambda"))
    parser = argparse.ArgumentParser(prog="amal")
    sub = parser.add_subparsers(dest="command", required=True)
    add_report_parser(sub)
    assert "RUN_DIR" in sub.choices["report"].format_help()
    args = parser.parse_args(["report", runs["ce"]])
    assert args.func(args) == 0
    html_path = os.path.join(runs["ce"], "report", "report.html")  # default: RUN_DIR/report
    assert f"html: {html_path}" in capsys.readouterr().out
    html = _read(html_path)
    assert len(_images(html)) == 1  # the accuracy curves
    for section in SECTIONS:
        assert f">{section}</h" in html
    assert "Λ is fixed in this run (ce)" in html and "No run with learned λ_KD" in html
    assert _md_pngs(os.path.join(runs["ce"], "report", "report.md")) == [
        os.path.join(runs["ce"], "report", "report-accuracy.png")]


def test_degrades_without_optional_files_and_reports_no_noise(runs, tmp_path, monkeypatch):
    drawn = []
    for name in ("accuracy_curves", "lambda_histograms", "kd_vs_teacher", "ce_vs_noise"):  # rendering: tested above
        monkeypatch.setattr(plots, name, lambda *a, _n=name, **k: drawn.append(_n) or PNG_MAGIC + b"stub")
    student = tmp_path / "student"
    shutil.copytree(os.path.join(runs["amal"], "student"), student)
    os.remove(student / "summary.json")
    os.remove(student / "lambda.pt")
    inst = torch.load(student / "instances.pt", weights_only=True)
    inst["noise_mask"] = torch.zeros_like(inst["noise_mask"])
    inst["teacher_logits"] = []
    torch.save(inst, student / "instances.pt")
    paths = build_report(str(tmp_path), out_dir=str(tmp_path / "out"))  # the parent of student/
    html = _read(paths["html"])
    assert NO_NOISE in html and "no teachers in this run" in html
    assert "no summary.json" in html and "no lambda.pt" in html
    assert drawn == ["accuracy_curves", "lambda_histograms"]  # Λ histograms from the snapshots
    assert len(_images(html)) == 2
    assert "<td>?</td>" in html  # method unknown without summary.json


def test_folder_without_metrics_is_an_error(tmp_path):
    (tmp_path / "student").mkdir()
    (tmp_path / "student" / "lambda.pt").write_bytes(b"")
    with pytest.raises(AmalError, match="metrics.jsonl") as e:
        build_report(str(tmp_path))
    assert "\n" not in str(e.value)
    with pytest.raises(AmalError, match="not found"):
        build_report(str(tmp_path / "nope"))
    (tmp_path / "student" / "metrics.jsonl").write_text("{broken\n")
    with pytest.raises(AmalError, match="no metric rows"):
        build_report(str(tmp_path))


def test_rank_statistics():
    x = np.array([3.0, 1.0, 3.0, 2.0])
    assert _ranks(x).tolist() == [3.5, 1.0, 3.5, 2.0]
    assert _auc(np.array([0.9, 0.8, 0.1, 0.2]), np.array([True, True, False, False])) == 1.0
    assert _auc(np.array([0.5, 0.5]), np.array([True, False])) == 0.5
    assert np.isnan(_auc(np.array([1.0, 2.0]), np.array([True, True])))
