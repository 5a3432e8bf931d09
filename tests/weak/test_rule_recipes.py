"""Rule-denoising recipes: each method's training loss against a hand-written formula, the Λ layout (what is
learned, what is frozen), the training set, and that a run resumes exactly."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from amal.core.batch import Batch
from amal.distill.baselines import l2rw_weights
from amal.errors import AmalError
from amal.weak.config import RULE_METHODS, rules_config_from
from amal.weak.recipes import (
    JointModel,
    build_student,
    make_problem,
    run_rules,
    train_method,
    train_teacher,
    training_targets,
)

pytestmark = pytest.mark.usefixtures("single_thread")
CPU = torch.device("cpu")


def _cfg(**top):
    data = {"data": {"name": "synthetic", "n_labelled": 40, "n_val": 150, "n_test": 200,
                     "synthetic": {"n": 900, "n_lfs": 5}},
            "progress": False, "train": {"epochs": 4, "batch_size": 64}, "teacher": {"epochs": 8}}
    return rules_config_from(data, **top)


@pytest.fixture(scope="module")
def problem():
    torch.set_num_threads(1)
    cfg = _cfg()
    p = make_problem(cfg)
    p.teacher, p.teacher_result = train_teacher(cfg, p, None, CPU)
    return cfg, p


def _mixed_batch(setup, n=30):
    """Labelled rows and unlabelled rows together, prepared by the method's terms."""
    lab = torch.nonzero(setup.labelled).flatten()[:10]
    unl = torch.nonzero(~setup.labelled).flatten()[: n - 10]
    idx = torch.cat([lab, unl])
    batch = Batch(setup.train.x[idx], setup.train.y[idx], idx)
    setup.meta.prepare(batch)
    return batch


def _pieces(setup, problem, batch):
    torch.manual_seed(0)
    logits = setup.model(batch.x)
    lab = setup.labelled[batch.idx].float()
    unl = 1 - lab
    ce = F.cross_entropy(logits, batch.y, reduction="none")
    post = torch.from_numpy(np.concatenate([np.eye(2)[problem.data.y["labelled"]],
                                            problem.posterior["unlabelled"]])).float()[batch.idx]
    log_p = torch.log_softmax(logits, 1)
    return logits, lab, unl, ce, post, log_p


def _kd(problem, batch, logits, T):
    t = problem.teacher(batch.x)
    p_t = torch.softmax(t / T, 1)
    return T**2 * (p_t * (p_t.log() - torch.log_softmax(logits / T, 1))).sum(1)


@pytest.mark.parametrize("method", ["lm_end_hard", "lm_end_soft", "fixed_mix", "amal", "amal_soft", "amal_lf"])
def test_training_loss_matches_its_formula(problem, method):
    cfg, p = problem
    setup = build_student(method, cfg, p, CPU)
    batch = _mixed_batch(setup)
    logits, lab, unl, ce, post, log_p = _pieces(setup, p, batch)
    soft = -(post * log_p).sum(1)
    kd = _kd(p, batch, logits, cfg.rules.temperature)
    w = cfg.rules.fixed_weight
    if method == "lm_end_hard":
        want = lab * ce + unl * ce
    elif method == "lm_end_soft":
        want = lab * ce + unl * soft
    elif method == "fixed_mix":
        want = lab * ce + unl * (w * ce + (1 - w) * kd)
    elif method == "amal":
        want = lab * ce + unl * 0.5 * (ce + kd)  # the configured initial λ_lm = λ_kd = 0.5
    elif method == "amal_soft":
        want = lab * ce + unl * 0.5 * (soft + kd)
    else:  # amal_lf: CE to each firing LF's vote, 1 / (number firing) each, plus KD
        L = torch.from_numpy(np.concatenate([p.data.lf["labelled"].L, p.data.lf["unlabelled"].L]))[batch.idx]
        fired = (L >= 0).float()
        per = torch.stack([F.cross_entropy(logits, L[:, j].clamp_min(0), reduction="none")
                           for j in range(L.shape[1])], 1)
        want = lab * ce + unl * ((per * fired).sum(1) / fired.sum(1).clamp_min(1) + 0.5 * kd)
    got = setup.meta.weighted_loss(logits, batch)
    assert torch.allclose(got, want.mean(), atol=1e-6), (float(got), float(want.mean()))


def test_jl_loss_matches_its_formula(problem):
    cfg, p = problem
    setup = build_student("jl", cfg, p, CPU)
    assert isinstance(setup.model, JointModel)
    batch = _mixed_batch(setup)
    logits, lab, unl, ce, _, log_p = _pieces(setup, p, batch)
    cage = setup.model.label_model
    L = batch.extras["rules:lf"]
    lj = cage.log_joint(L)
    log_q = torch.log_softmax(lj, 1).float()
    pr = log_p.exp()
    want = (lab * ce + unl * (-(pr * log_p).sum(1)) + unl * F.cross_entropy(logits, lj.argmax(1), reduction="none")
            + (pr * (log_p - log_q)).sum(1) + lab * -lj.gather(1, batch.y[:, None]).squeeze(1).float()
            + unl * -torch.logsumexp(lj, 1).float())
    got = setup.meta.weighted_loss(logits, batch)
    assert torch.allclose(got, want.mean(), atol=1e-5)
    got.backward()  # the label model trains with the end model
    assert cage.theta.grad is not None and cage.theta.grad.abs().sum() > 0
    groups = setup.optimizer.param_groups
    assert len(groups) == 2 and groups[1]["lr"] == cfg.rules.jl_lm_lr and groups[1]["weight_decay"] == 0.0


def test_l2rw_loss_is_the_lookahead_weighted_ce(problem):
    cfg, p = problem
    setup = build_student("l2rw", cfg, p, CPU)
    idx = torch.arange(0, 60)
    loss, logits = setup.meta.loss((setup.train.x[idx], setup.train.y[idx], idx), lr=0.1)
    w = setup.meta.last_weights
    assert torch.allclose(w.sum(), torch.tensor(1.0, dtype=w.dtype)) and (w >= 0).all()
    ce = F.cross_entropy(logits, setup.train.y[idx], reduction="none")
    assert torch.allclose(loss, (w.float() * ce).sum(), atol=1e-6)
    assert torch.equal(l2rw_weights(torch.tensor([-1.0, 1.0, -3.0])), torch.tensor([0.25, 0.0, 0.75]))


def test_training_set_is_l_then_u_with_label_model_labels(problem):
    _, p = problem
    train, targets, labelled = training_targets(p)
    n_l = len(p.data.y["labelled"])
    assert len(train) == n_l + len(p.data.y["unlabelled"]) and int(labelled.sum()) == n_l
    assert np.array_equal(train.y[:n_l].numpy(), p.data.y["labelled"])
    assert np.array_equal(train.y[n_l:].numpy(), p.lm_labels["unlabelled"])  # never the hidden gold of U
    assert torch.equal(targets["rules:unlabelled"], (~labelled).float())


def test_lambda_layout_learned_and_frozen_entries(problem):
    cfg, p = problem
    setup = build_student("amal", cfg, p, CPU)
    t = setup.meta.table
    lab = setup.labelled
    ce, lm, kd = (t.columns.index(c) for c in ("ce", "lm", "kd"))
    assert (t.values[lab, ce] == 1).all() and (t.values[~lab, ce] == 0).all() and t.frozen[:, ce].all()
    for c in (lm, kd):
        assert (t.values[lab, c] == 0).all() and t.frozen[lab, c].all()
        assert (t.values[~lab, c] == 0.5).all() and not t.frozen[~lab, c].any()
    before = t.values.clone()
    setup.meta.sweep(((setup.train.x[i], setup.train.y[i], i) for i in torch.arange(len(setup.train)).split(64)),
                     lr=0.05)
    frozen = t.frozen
    assert torch.equal(t.values[frozen], before[frozen])  # frozen entries never move
    assert not torch.equal(t.values[~frozen], before[~frozen])
    stats = t.stats()
    assert stats["ce"]["min"] == stats["ce"]["max"] == 1.0  # the zero entries are switched-off terms, not weights
    jl = build_student("amal_jl", cfg, p, CPU).meta.table
    for col in ("lm_nll_sup", "lm_nll_unsup"):
        assert jl.frozen[:, jl.columns.index(col)].all()  # no logit gradient: never learned, and marked so
    learn = _cfg(rules={"learn_labelled": True})
    t2 = build_student("amal", learn, p, CPU).meta.table
    assert not t2.frozen[lab, ce].any() and t2.frozen[~lab, ce].all()


def test_every_method_runs_and_writes_its_folder(problem, tmp_path):
    cfg, p = problem
    for method in RULE_METHODS:
        out = train_method(method, cfg, p, str(tmp_path / method), CPU)
        assert 0.0 <= out.metrics["test_macro_f1"] <= 1.0 and (tmp_path / method / "summary.json").exists(), method
        if method not in ("lm_only", "sup_l", "sup_lv"):
            assert (tmp_path / method / "rules.pt").exists() and (tmp_path / method / "lambda.pt").exists()
    with pytest.raises(AmalError, match="does not train a student"):
        build_student("sup_l", cfg, p, CPU)


class Interrupt(Exception):
    pass


def test_rules_run_resumes_exactly(tmp_path, monkeypatch):
    import amal.train.trainer as trainer_mod

    cfg = _cfg(out_dir=str(tmp_path), amal={"update": "adam", "warmup": 1, "every": 1}, seed=2)
    cfg.train.epochs = 4
    original = trainer_mod.Trainer.fit
    stop = {"at": None}

    def fit(self, resume=False, on_epoch_end=None):
        def hook(epoch):
            if stop["at"] is not None and epoch == stop["at"] and self.desc == "amal":
                raise Interrupt

        return original(self, resume=resume, on_epoch_end=hook)

    monkeypatch.setattr(trainer_mod.Trainer, "fit", fit)
    cfg.name = "full"
    full = run_rules(cfg)
    cfg.name = "cut"
    stop["at"] = 1
    with pytest.raises(Interrupt):
        run_rules(cfg)
    stop["at"] = None
    with pytest.raises(AmalError, match="--resume"):
        run_rules(cfg)
    torch.manual_seed(999)
    resumed = run_rules(cfg, resume=True)
    a = torch.load(tmp_path / "full" / "student" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "cut" / "student" / "checkpoint.pt", weights_only=True)
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert torch.equal(a["meta"]["table"]["values"], b["meta"]["table"]["values"])
    strip = [{k: v for k, v in r.items() if "seconds" not in k} for r in full.result.rows]
    assert strip == [{k: v for k, v in r.items() if "seconds" not in k} for r in resumed.result.rows]
    assert full.metrics["test_macro_f1"] == resumed.metrics["test_macro_f1"]


def test_supervised_baselines_train_on_l_and_on_l_and_v(problem, monkeypatch):
    import amal.weak.recipes as rec

    cfg, p = problem
    seen = []
    real = rec.train_classifier

    def spy(model, splits, ocfg, **kw):
        seen.append((len(splits.train), ocfg))
        return real(model, splits, ocfg, **kw)

    monkeypatch.setattr(rec, "train_classifier", spy)
    rec.train_teacher(cfg, p, None, CPU)
    rec.train_teacher(cfg, p, None, CPU, on_l_and_v=True)
    n_l, n_v = len(p.data.y["labelled"]), len(p.data.y["val"])
    assert [n for n, _ in seen] == [n_l, n_l + n_v]
    assert all(o is cfg.teacher for _, o in seen)  # the teacher's optimiser settings, for both


def test_label_model_alone_is_scored_on_every_test_row(problem, tmp_path):
    cfg, p = problem
    out = train_method("lm_only", cfg, p, str(tmp_path), CPU)
    pred = p.label_model.predict(p.data.lf["test"].L)
    assert out.metrics["test_acc"] == pytest.approx(float((pred == p.data.y["test"]).mean()))
