"""Does AMAL learn the right trust on synthetic rules where the answer is known?

Every LF votes a wrong class inside a known region of input space (``amal.weak.synthetic``), so the label
model's labels are wrong there. AMAL must end with a clearly lower λ for the label-model term inside the region
than outside, and — with one term per LF — with lower λ wherever an LF's vote is wrong. Λ starts uniform over
the unlabelled rows, so every gap checked here is learned.
"""

import numpy as np
import pytest
import torch

from amal.analysis.rules import load_rule_run, trust_rows
from amal.analysis.stats import auc
from amal.weak.config import rules_config_from
from amal.weak.recipes import build_student, make_problem, train_method

pytestmark = pytest.mark.usefixtures("single_thread")
MIN_GAP = 0.4  # observed 0.79-0.85 (λ_lm, CAGE and MV, seeds 0-4), 0.65-0.80 (worst LF of amal_lf)
MIN_AUC = 0.85  # observed 0.89-0.98 (λ_lm by region and by label-model correctness), >= 0.94 per LF


def _cfg(label_model, seed, **rules):
    return rules_config_from({
        "data": {"name": "synthetic", "n_labelled": 50, "n_val": 200, "n_test": 200,
                 "synthetic": {"n": 1500, "n_lfs": 6, "seed": seed}},
        "label_model": {"name": label_model}, "progress": False, "train": {"epochs": 10, "batch_size": 64},
        "rules": {"kd": False, **rules}, "amal": {"warmup": 1, "every": 1},
    }, seed=seed)


@pytest.mark.parametrize("label_model, seed", [("cage", 0), ("mv", 1)])
def test_label_model_term_loses_weight_where_the_rules_are_wrong(tmp_path, label_model, seed):
    cfg = _cfg(label_model, seed)
    problem = make_problem(cfg)
    start = build_student("amal", cfg, problem, torch.device("cpu")).meta.table
    unl = ~torch.from_numpy(np.r_[np.ones(len(problem.data.y["labelled"]), bool),
                                  np.zeros(len(problem.data.y["unlabelled"]), bool)])
    assert start.values[unl, start.columns.index("lm")].unique().numel() == 1  # uniform before learning
    train_method("amal", cfg, problem, str(tmp_path), torch.device("cpu"))
    run = load_rule_run(str(tmp_path))
    lam, _ = run.column("lm")
    inside = run.region
    assert inside.mean() > 0.1 and (~run.lm_right[inside]).mean() > 0.9  # the label model is wrong there
    gap = lam[~inside].mean() - lam[inside].mean()
    assert gap > MIN_GAP, gap
    assert auc(lam, ~inside) > MIN_AUC
    assert auc(lam, run.lm_right) > MIN_AUC


def test_per_lf_terms_lose_weight_where_each_lf_is_wrong(tmp_path):
    cfg = _cfg("cage", 2)
    problem = make_problem(cfg)
    train_method("amal_lf", cfg, problem, str(tmp_path), torch.device("cpu"))
    rows = [r for r in trust_rows(load_rule_run(str(tmp_path))) if r["criterion"] == "LF right"]
    assert len(rows) == 6
    for r in rows:
        assert r["mean_right"] - r["mean_wrong"] > MIN_GAP and r["auc"] > MIN_AUC, r
