"""Rule-denoising recipes and baselines on top of the AMAL core (DESIGN §3, docs/rules.md).

The student's training set is L ∪ U. Its label ``y`` is the gold label on L and the label model's hard label on
U; per-instance masks, the label model's posterior and the LF votes travel in an :class:`InstanceTargets` table.
Every method is an ``AMAL`` object (a ``fixed`` schedule for the baselines) trained by the same
:class:`~amal.train.Trainer`, so splits, end model, data order, budget and checkpoint selection are identical.

Λ columns by method (U = unlabelled rows, L = labelled rows; an entry where a term is zero is frozen at 0):

============= ===================================================================================================
``amal``      ``ce`` (L, frozen at ``labelled_weight``), ``lm`` CE to the label model's label (U), ``kd`` KD from
              teacher 1 = the end model trained on L (U) — the authors' recipe.
``amal_soft`` as ``amal`` with ``lm_soft``: soft CE to the label model's posterior.
``amal_lf``   ``ce`` (L) and one ``lf:<name>`` term per LF: CE to that LF's vote where it fires (U), starting at
              1 / (number of LFs firing), i.e. at the soft majority vote; ``kd`` optional.
``amal_jl``   the JL terms (``ce``, ``entropy``, ``lm``, ``kl_lm``, ``lm_nll_sup``, ``lm_nll_unsup``,
              ``quality``) with a CAGE label model trained jointly; starts at the JL unit weights. The label
              model's own terms do not depend on the end model's logits, so their λ stays at 1.
============= ===================================================================================================

Baselines: ``sup_l`` (end model on L = teacher 1), ``sup_lv`` (on L ∪ V, last epoch), ``lm_end_hard`` /
``lm_end_soft`` (CE on L + CE to the label model's hard / soft labels on U, unit weights), ``jl`` (JL, unit
weights), ``l2rw`` (learning to reweight on the label model's labels), ``fixed_mix`` (CE on L + w·lm +
(1 − w)·kd) and ``lm_only`` (the label model's own predictions).
"""

from __future__ import annotations

import copy
import importlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import yaml
from torch import Tensor, nn

from amal.core.mixer import AMAL
from amal.core.term import LossTerm
from amal.data.datasets import DataSplits, TensorData
from amal.distill.baselines import L2RW
from amal.distill.recipes import _check_same_config
from amal.distill.teachers import train_classifier
from amal.errors import AmalError
from amal.losses import CrossEntropy, Distillation
from amal.losses.rules import (
    Entropy,
    InstanceTargets,
    JointKL,
    JointLabelCE,
    LabelModelNLL,
    LFVoteCE,
    Masked,
    QualityGuideTerm,
    SoftCrossEntropy,
)
from amal.models import build_model
from amal.train.checkpoint import atomic_save
from amal.train.config import to_dict
from amal.train.trainer import FitResult, Trainer, macro_f1, make_optimizer
from amal.weak.config import AMAL_RULE_METHODS, RulesConfig
from amal.weak.data import SPLITS, RuleData, rule_data_from_arrays, rule_data_from_texts
from amal.weak.label_models import CAGE, LabelModel, label_model_options, make_label_model

LABELLED, UNLABELLED, LM_SOFT, LF, SCORE = ("rules:labelled", "rules:unlabelled", "rules:lm_soft", "rules:lf",
                                           "rules:score")
TEACHER = "teacher_logits:kd"  # the key Distillation(name="kd") reads: filled from the table, no teacher call
JL_MODEL_TERMS = ("lm_nll_sup", "lm_nll_unsup", "quality")  # the label model's own terms (no logit gradient)


# ---------------------------------------------------------------------------------------------- data
def resolve_lf_set(spec: str) -> list[Any]:
    """An LF set by name (``amal.weak.lfsets``) or ``"module:function"`` (your own: imported and called, so only
    name modules you trust)."""
    from amal.weak.lfsets import LF_SETS, get_lf_set

    if spec in LF_SETS or ":" not in spec:
        return get_lf_set(spec)
    module, _, attr = spec.partition(":")
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise AmalError(f"cannot load LF set {spec!r}: {e}") from None
    return list(fn())


def load_rule_data(cfg: RulesConfig) -> RuleData:
    """The configured data set, LFs applied, split with ``cfg.seed``, features fitted on L ∪ U."""
    d = cfg.data
    sizes = dict(n_labelled=d.n_labelled, n_val=d.n_val, n_test=d.n_test, seed=cfg.seed, uncovered=d.uncovered)
    if d.name == "synthetic":
        from amal.weak.synthetic import synthetic_rules

        try:
            syn = synthetic_rules(**d.synthetic)
        except TypeError as e:
            raise AmalError(f"bad option in data.synthetic: {e}") from None
        classes = [f"class{c}" for c in range(int(syn.y.max()) + 1)]
        return rule_data_from_arrays("synthetic", syn.x, syn.y, syn.L, class_names=classes, lf_names=syn.names,
                                     extra={"region": syn.region}, **sizes)
    from amal.data.text import load_text_dataset
    from amal.weak.features import make_features

    ds = load_text_dataset(d.name, d.path, verify=d.verify, download=d.download)
    lfs = resolve_lf_set(d.lfs or d.name)
    return rule_data_from_texts(ds.name, ds.texts, ds.labels, lfs, ds.class_names, features=make_features(cfg.features),
                                dedupe=d.dedupe, progress=cfg.progress or None, **sizes)


def fit_label_model(name: str, options: dict[str, Any], data: RuleData, seed: int = 0) -> LabelModel:
    """Fit a label model on U (marginal) and L (supervised where the model uses labels)."""
    opts = dict(options)
    if "seed" in label_model_options(name):
        opts.setdefault("seed", seed)
    lm = make_label_model(name, data.n_classes, **opts)
    lab, unl = data.lf["labelled"], data.lf["unlabelled"]
    return lm.fit(unl.L, L_l=lab.L, y_l=data.y["labelled"], S_u=unl.S, S_l=lab.S, lf_labels=unl.labels,
                  continuous=unl.continuous)


def lm_metrics(lm: LabelModel, data: RuleData, split: str) -> dict[str, float]:
    """Accuracy and macro-F1 of the label model's own predictions on a split (all rows, covered or not)."""
    pred = lm.predict(data.lf[split].L, data.lf[split].S)
    gold = data.y[split]
    return {"acc": float((pred == gold).mean()), "macro_f1": macro_f1(torch.from_numpy(pred), torch.from_numpy(gold))}


@dataclass
class RuleProblem:
    """What every method of one seed shares: the data, the fitted label model and its outputs, teacher 1."""

    data: RuleData
    label_model: LabelModel
    lm_name: str
    posterior: dict[str, np.ndarray]
    lm_labels: dict[str, np.ndarray]
    teacher: nn.Module | None = None
    teacher_result: FitResult | None = None
    cage: CAGE | None = None  # the CAGE that JL starts from (the label model itself when it is CAGE)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_train(self) -> int:
        return len(self.data.y["labelled"]) + len(self.data.y["unlabelled"])


def make_problem(cfg: RulesConfig, data: RuleData | None = None, label_model: LabelModel | None = None
                 ) -> RuleProblem:
    data = data if data is not None else load_rule_data(cfg)
    lm = label_model or fit_label_model(cfg.label_model.name, cfg.label_model.options, data, cfg.seed)
    post = {s: lm.predict_proba(data.lf[s].L, data.lf[s].S) for s in SPLITS}
    hard = {s: lm.predict(data.lf[s].L, data.lf[s].S) for s in SPLITS}
    return RuleProblem(data, lm, lm.name, post, hard, cage=lm if isinstance(lm, CAGE) else None)


def joint_cage(problem: RuleProblem, cfg: RulesConfig) -> CAGE:
    """A fresh copy of the problem's CAGE (fitted once on demand when the label model is not CAGE)."""
    if problem.cage is None:
        opts = cfg.label_model.options if cfg.label_model.name == "cage" else {}
        problem.cage = fit_label_model("cage", opts, problem.data, cfg.seed)  # type: ignore[assignment]
    return copy.deepcopy(problem.cage)  # type: ignore[return-value]


def _splits_for(x: Tensor, y: np.ndarray, data: RuleData) -> DataSplits:
    train = TensorData(x, torch.from_numpy(y))
    yv, yt = (torch.from_numpy(data.y[s]) for s in ("val", "test"))
    return DataSplits(train=train, val=TensorData(data.x["val"], yv), test=TensorData(data.x["test"], yt),
                      n_classes=data.n_classes, noise_mask=torch.zeros(len(y), dtype=torch.bool),
                      clean_train_y=train.y)


def train_teacher(cfg: RulesConfig, problem: RuleProblem, run_dir: str | None, device: torch.device,
                  on_l_and_v: bool = False) -> tuple[nn.Module, FitResult]:
    """The end model trained with CE on L (teacher 1, and the ``sup_l`` baseline) or on L ∪ V (``sup_lv``),
    with the ``teacher:`` optimiser settings; best-validation weights restored (resumes from ``run_dir``)."""
    d = problem.data
    x, y = d.x["labelled"], d.y["labelled"]
    if on_l_and_v:
        x, y = torch.cat([x, d.x["val"]]), np.concatenate([y, d.y["val"]])
    torch.manual_seed(cfg.seed + 101)
    model = build_model(cfg.model, d.input_shape, d.n_classes).to(device)
    res = train_classifier(model, _splits_for(x, y, d), cfg.teacher, seed=cfg.seed + 1, run_dir=run_dir,
                           progress=cfg.progress, desc="sup_lv" if on_l_and_v else "teacher")
    return model.eval(), res


# ---------------------------------------------------------------------------------------------- terms and Λ
class JointModel(nn.Module):
    """The end model plus a label model trained with it (JL): the forward pass is the end model's, and the label
    model's parameters travel in the same state_dict and optimiser."""

    def __init__(self, end: nn.Module, label_model: CAGE) -> None:
        super().__init__()
        self.end = end
        self.label_model = label_model

    def forward(self, x: Tensor) -> Tensor:
        return self.end(x)


@dataclass
class StudentSetup:
    model: nn.Module
    meta: AMAL
    optimizer: torch.optim.Optimizer
    train: TensorData
    targets: InstanceTargets
    labelled: Tensor  # [N] bool


def training_targets(problem: RuleProblem) -> tuple[TensorData, InstanceTargets, Tensor]:
    """L ∪ U with y = gold on L, the label model's label on U, and the per-instance targets."""
    d = problem.data
    n_l, n_u = len(d.y["labelled"]), len(d.y["unlabelled"])
    x = torch.cat([d.x["labelled"], d.x["unlabelled"]])
    y = torch.from_numpy(np.concatenate([d.y["labelled"], problem.lm_labels["unlabelled"]]))
    labelled = torch.cat([torch.ones(n_l, dtype=torch.bool), torch.zeros(n_u, dtype=torch.bool)])
    onehot = np.eye(d.n_classes)[d.y["labelled"]]
    soft = torch.from_numpy(np.concatenate([onehot, problem.posterior["unlabelled"]])).float()
    lf = torch.from_numpy(np.concatenate([d.lf["labelled"].L, d.lf["unlabelled"].L]))
    scores = torch.from_numpy(np.concatenate([d.lf["labelled"].S, d.lf["unlabelled"].S])).float()
    tensors = {LABELLED: labelled.float(), UNLABELLED: (~labelled).float(), LM_SOFT: soft, LF: lf, SCORE: scores}
    if problem.teacher is not None:  # computed once, in fixed blocks: the same numbers whatever the batch order
        tensors[TEACHER] = teacher_logits(problem.teacher, x)
    return TensorData(x, y), InstanceTargets(tensors), labelled


@torch.no_grad()
def teacher_logits(teacher: nn.Module, x: Tensor, block: int = 2048) -> Tensor:
    teacher.eval()
    dev = next(teacher.parameters()).device
    return torch.cat([teacher(x[s : s + block].to(dev)).float().cpu() for s in range(0, len(x), block)])


def _lf_column(name: str) -> str:
    return f"lf:{name}"


def rule_terms(method: str, cfg: RulesConfig, problem: RuleProblem, targets: InstanceTargets,
               teacher: nn.Module | None, cage: CAGE | None) -> list[LossTerm]:
    ce = Masked(CrossEntropy("ce"), LABELLED, targets=targets)
    if method in ("jl", "amal_jl"):
        assert cage is not None
        score = SCORE if bool(cage.continuous.any()) else None
        kw = dict(lf_key=LF, score_key=score, targets=targets)
        terms: list[LossTerm] = [
            ce, Masked(Entropy(), UNLABELLED), Masked(JointLabelCE(cage, **kw), UNLABELLED), JointKL(cage, **kw),
            Masked(LabelModelNLL(cage, "supervised", **kw), LABELLED),
            Masked(LabelModelNLL(cage, "marginal", **kw), UNLABELLED),
        ]
        if cfg.rules.quality is not None:
            cage.quality = cfg.rules.quality
            terms.append(QualityGuideTerm(cage, cage.quality_tensor(cage.n_lfs or 0)))  # type: ignore[arg-type]
        return terms
    terms = [ce]
    if method in ("amal", "lm_end_hard", "fixed_mix"):
        terms.append(Masked(CrossEntropy("lm"), UNLABELLED))
    elif method in ("amal_soft", "lm_end_soft"):
        terms.append(Masked(SoftCrossEntropy(LM_SOFT, name="lm_soft"), UNLABELLED))
    elif method == "amal_lf":
        terms += [LFVoteCE(j, _lf_column(nm), LF, UNLABELLED) for j, nm in enumerate(problem.data.lf_names)]
    want_kd = method == "fixed_mix" or (method in AMAL_RULE_METHODS and cfg.rules.kd)
    if want_kd:
        if teacher is None:
            raise AmalError(f"method {method!r} needs teacher 1 (the end model trained on L)")
        terms.append(Masked(Distillation(teacher, cfg.rules.temperature, name="kd"), UNLABELLED, targets=targets))
    return terms


def initial_lambda(method: str, cfg: RulesConfig, problem: RuleProblem, columns: list[str], labelled: Tensor
                   ) -> tuple[Tensor, Tensor]:
    """``[N, K]`` initial Λ and the ``[N, K]`` bool mask of frozen entries (see the module docstring)."""
    n, k = labelled.shape[0], len(columns)
    init = torch.zeros(n, k)
    frozen = torch.zeros(n, k, dtype=torch.bool)
    lab, unl = labelled, ~labelled
    li = cfg.rules.lambda_init
    learned = method in AMAL_RULE_METHODS
    lf_all = torch.from_numpy(np.concatenate([problem.data.lf["labelled"].L, problem.data.lf["unlabelled"].L]))
    fired = (lf_all >= 0).float()
    n_fired = fired.sum(1).clamp_min(1.0)
    for c, col in enumerate(columns):
        if col == "ce":
            init[lab, c] = cfg.rules.labelled_weight
            frozen[:, c] = unl if cfg.rules.learn_labelled else torch.ones_like(unl)
        elif col in ("lm", "lm_soft", "kd"):
            if method == "fixed_mix":
                w = cfg.rules.fixed_weight
                value = w if col == "lm" else 1.0 - w
            elif learned and method != "amal_jl":
                value = float(li.get(col, li.get("lm", 0.5) if col == "lm_soft" else 0.5))
            else:  # JL and the LM + end-model baselines: unit weights
                value = 1.0
            init[unl, c] = value
            frozen[lab, c] = True
        elif col.startswith("lf:"):
            j = problem.data.lf_names.index(col[3:])
            on = unl & (lf_all[:, j] >= 0)
            init[on, c] = (float(li["lf"]) if "lf" in li else 1.0 / n_fired[on])
            frozen[~on, c] = True
        elif col in ("entropy", "lm_nll_unsup"):
            init[unl, c] = 1.0
            frozen[lab, c] = True
        elif col == "lm_nll_sup":
            init[lab, c] = 1.0
            frozen[unl, c] = True
        elif col in ("kl_lm", "quality"):
            init[:, c] = 1.0
        if col in JL_MODEL_TERMS:  # no logit gradient: its λ can never move, say so
            frozen[:, c] = True
    return init, frozen


def build_student(method: str, cfg: RulesConfig, problem: RuleProblem, device: torch.device) -> StudentSetup:
    """Model, optimiser and the method's ``AMAL`` object (Λ initialised and frozen where it must be)."""
    if method in ("sup_l", "sup_lv", "lm_only"):
        raise AmalError(f"method {method!r} does not train a student on L ∪ U")
    train, targets, labelled = training_targets(problem)
    d = problem.data
    torch.manual_seed(cfg.seed)
    end = build_model(cfg.model, d.input_shape, d.n_classes)
    cage = None
    if method in ("jl", "amal_jl"):
        cage = joint_cage(problem, cfg)
        model: nn.Module = JointModel(end, cage).to(device)
        opt = make_optimizer(model, cfg.train, groups=[
            {"params": [p for p in end.parameters() if p.requires_grad]},
            {"params": [p for p in cage.parameters() if p.requires_grad], "lr": cfg.rules.jl_lm_lr,
             "weight_decay": 0.0}])
    else:
        model = end.to(device)
        opt = make_optimizer(model, cfg.train)
    val = (d.x["val"], torch.from_numpy(d.y["val"]))
    n = len(train)
    if method == "l2rw":
        opts = dict(cfg.baseline)
        opts.setdefault("seed", cfg.seed)
        meta: AMAL = L2RW(model, n, val, optimizer=opt, **opts)
        return StudentSetup(model, meta, opt, train, targets, labelled)
    terms = rule_terms(method, cfg, problem, targets, problem.teacher, cage)  # KD reads its logits from targets
    names = [t.name for t in terms]
    placeholder = {nm: 1.0 for nm in names}
    if method in AMAL_RULE_METHODS:
        meta = AMAL(model, terms, n, val, optimizer=opt, config=cfg.amal, lambda_init=placeholder)
    else:
        meta = AMAL(model, terms, n, None, optimizer=opt, schedule="fixed", lambda_init=placeholder)
    init, frozen = initial_lambda(method, cfg, problem, names, labelled)
    table = meta.table
    table.set_rows(torch.arange(n, device=table.values.device), init.to(table.values))
    table.freeze(frozen, init)  # (under a fixed schedule nothing moves anyway; the mask still marks what applies)
    return StudentSetup(model, meta, opt, train, targets, labelled)


# ---------------------------------------------------------------------------------------------- one method
@dataclass
class RulesRun:
    method: str
    run_dir: str
    metrics: dict[str, Any]  # val_* and test_* at the chosen epoch, seconds, epochs
    result: FitResult | None = None
    lambda_stats: dict[str, Any] = field(default_factory=dict)


def _at_epoch(rows: list[dict[str, Any]], epoch: int) -> dict[str, Any]:
    return next(r for r in rows if r["epoch"] == epoch)


def fit_metrics(result: FitResult, last_epoch: bool = False) -> dict[str, Any]:
    """Validation and test metrics at the best-validation epoch (or the last epoch when the validation set
    was trained on)."""
    row = result.rows[-1] if last_epoch else _at_epoch(result.rows, result.best_epoch)
    return {"epoch": int(row["epoch"]), "val_acc": row["val_acc"], "val_macro_f1": row["val_macro_f1"],
            "test_acc": row["test_acc"], "test_macro_f1": row["test_macro_f1"], "seconds": result.seconds,
            "sweeps": result.sweeps, "selected_by": "last epoch" if last_epoch else f"val {result.select}"}


def train_method(method: str, cfg: RulesConfig, problem: RuleProblem, run_dir: str, device: torch.device,
                 resume: bool = False) -> RulesRun:
    """Train (or evaluate, for ``lm_only``) one method on a prepared problem; writes the run folder."""
    os.makedirs(run_dir, exist_ok=True)
    d = problem.data
    if method == "lm_only":
        metrics = {f"{s}_{k}": v for s in ("val", "test") for k, v in lm_metrics(problem.label_model, d, s).items()}
        metrics.update(seconds=0.0, epoch=None, selected_by="no training", label_model=problem.lm_name)
        _write_summary(run_dir, method, metrics, None, {})
        return RulesRun(method, run_dir, metrics)
    if method in ("sup_l", "sup_lv"):
        if method == "sup_l" and problem.teacher_result is not None:
            result = problem.teacher_result
        else:
            _, result = train_teacher(cfg, problem, run_dir, device, on_l_and_v=method == "sup_lv")
        metrics = fit_metrics(result, last_epoch=method == "sup_lv")
        _write_summary(run_dir, method, metrics, result, {})
        return RulesRun(method, run_dir, metrics, result)
    setup = build_student(method, cfg, problem, device)
    test = TensorData(d.x["test"], torch.from_numpy(d.y["test"]))
    val = TensorData(d.x["val"], torch.from_numpy(d.y["val"]))
    trainer = Trainer(setup.model, setup.meta, setup.optimizer, setup.train, val, cfg.train, test=test,
                      run_dir=run_dir, seed=cfg.seed, progress=cfg.progress, desc=method)
    result = trainer.fit(resume=resume)
    setup.meta.table.save(os.path.join(run_dir, "lambda.pt"))
    save_rule_instances(run_dir, problem, setup, device)
    stats = setup.meta.table.stats()
    metrics = fit_metrics(result)
    _write_summary(run_dir, method, metrics, result, stats, [h.__dict__ for h in setup.meta.history])
    trainer.load_best()
    return RulesRun(method, run_dir, metrics, result, stats)


def _write_summary(run_dir: str, method: str, metrics: dict[str, Any], result: FitResult | None,
                   stats: dict[str, Any], sweeps: list[Any] | None = None) -> None:
    summary = {"method": method, **metrics, "lambda": stats, "sweep_records": sweeps or []}
    if result is not None:
        summary.update({k: v for k, v in result.as_dict().items() if k not in summary})
    with open(os.path.join(run_dir, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2, default=float)


@torch.no_grad()
def save_rule_instances(run_dir: str, problem: RuleProblem, setup: StudentSetup, device: torch.device) -> None:
    """``instances.pt`` (what ``amal report`` reads: given vs gold label, teacher 1's logits) and ``rules.pt``
    (LF votes, label-model posterior and the labelled mask of every training row, for the rule analysis)."""
    d = problem.data
    gold = torch.from_numpy(np.concatenate([d.y["labelled"], d.y["unlabelled"]]))
    y = setup.train.y
    teachers = [setup.targets[TEACHER]] if TEACHER in setup.targets.tensors else []
    atomic_save({"y": y.clone(), "clean_y": gold, "noise_mask": y != gold, "teacher_logits": teachers},
                os.path.join(run_dir, "instances.pt"))
    rules = {"lf": setup.targets[LF].clone(), "labelled": setup.labelled.clone(),
             "posterior": torch.from_numpy(np.concatenate([np.eye(d.n_classes)[d.y["labelled"]],
                                                           problem.posterior["unlabelled"]])).float(),
             "lf_names": list(d.lf_names), "class_names": list(d.class_names), "label_model": problem.lm_name}
    if "region" in d.extra:
        rules["region"] = torch.from_numpy(np.concatenate([d.extra["region"]["labelled"],
                                                           d.extra["region"]["unlabelled"]]))
    atomic_save(rules, os.path.join(run_dir, "rules.pt"))


# ---------------------------------------------------------------------------------------------- amal rules train
def needs_teacher(cfg: RulesConfig, method: str) -> bool:
    return method == "fixed_mix" or (method in ("amal", "amal_soft", "amal_lf") and cfg.rules.kd)


def prepare_problem(cfg: RulesConfig, root: str, device: torch.device, teacher: bool) -> RuleProblem:
    problem = make_problem(cfg)
    if teacher:
        problem.teacher, problem.teacher_result = train_teacher(cfg, problem, os.path.join(root, "teacher1"), device)
    return problem


def run_rules(cfg: RulesConfig, resume: bool = False) -> RulesRun:
    """``amal rules train``: data and LFs, the label model, teacher 1 when needed, then the configured method."""
    from amal.distill.recipes import apply_threads

    device = torch.device(cfg.device)
    apply_threads(cfg)  # type: ignore[arg-type]
    root = os.path.join(cfg.out_dir, cfg.name)
    student_dir = os.path.join(root, "student")
    if os.path.exists(os.path.join(student_dir, "checkpoint.pt")) and not resume:
        raise AmalError(f"run folder {root} already has a checkpoint; pass --resume or choose another name")
    os.makedirs(root, exist_ok=True)
    cfg_path = os.path.join(root, "config.yaml")
    if resume and os.path.exists(cfg_path):
        _check_same_config(cfg_path, cfg)  # type: ignore[arg-type]
    with open(cfg_path, "w", encoding="utf-8") as f:
        yaml.safe_dump(to_dict(cfg), f, sort_keys=False)
    problem = prepare_problem(cfg, root, device, teacher=needs_teacher(cfg, cfg.method) or cfg.method == "sup_l")
    return train_method(cfg.method, cfg, problem, student_dir, device, resume=resume)
