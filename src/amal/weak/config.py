"""Configuration of a rule-denoising run (``amal rules train``): YAML read with ``yaml.safe_load`` into nested
dataclasses, ``--set key=value`` overrides, unknown keys and bad values rejected with the key's name."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from amal.core.mixer import MetaConfig
from amal.errors import AmalError
from amal.train.config import (
    OptimConfig,
    _merge,
    _one_of,
    apply_override,
    check_meta,
    check_optim,
    from_dict,
    read_yaml_config,
    to_dict,
)

RULE_DATASETS = ("sms", "youtube", "synthetic")

# what each method trains on and with which terms: docs/rules.md
RULE_METHODS = (
    "amal", "amal_soft", "amal_lf", "amal_jl",  # AMAL recipes (Λ learned)
    "sup_l", "sup_lv", "lm_end_hard", "lm_end_soft", "jl", "l2rw", "fixed_mix",  # trained baselines
    "lm_only",  # the label model alone (no end-model training)
)
AMAL_RULE_METHODS = ("amal", "amal_soft", "amal_lf", "amal_jl")


@dataclass
class RulesDataConfig:
    name: str = "sms"  # sms | youtube | synthetic
    path: str | None = None  # data folder (or file); None: $AMAL_DATA_DIR
    download: bool = False  # fetch the public archive into path when the files are absent
    verify: bool = True  # check the published SHA-256 of every file
    n_labelled: int = 100
    n_val: int = 300
    n_test: int = 1000
    dedupe: bool = True  # drop exact duplicate texts before splitting
    uncovered: str = "drop"  # unlabelled rows where every LF abstains: drop | keep | error
    lfs: str | None = None  # LF set: a name in amal.weak.lfsets (default: the data set's own) or "module:function"
    synthetic: dict[str, Any] = field(default_factory=dict)  # options of amal.weak.synthetic.synthetic_rules


@dataclass
class LabelModelConfig:
    name: str = "cage"  # mv | cage | snorkel
    options: dict[str, Any] = field(default_factory=dict)  # e.g. {epochs: 200, lr: 0.01, quality: 0.85}


@dataclass
class RulesOptions:
    temperature: float = 1.0  # of the KD term from teacher 1 (the end model trained on L)
    kd: bool = True  # amal / amal_soft / amal_lf: include the KD term from teacher 1
    lambda_init: dict[str, float] = field(default_factory=lambda: {"lm": 0.5, "kd": 0.5})
    labelled_weight: float = 1.0  # the fixed weight of CE on the labelled rows
    learn_labelled: bool = False  # AMAL also learns λ_ce of the labelled rows
    fixed_weight: float = 0.5  # fixed_mix: λ_lm (λ_kd = 1 − fixed_weight)
    jl_lm_lr: float = 0.01  # jl / amal_jl: learning rate of the jointly trained label model (CAGE)
    quality: float | list[float] | None = None  # jl / amal_jl: CAGE quality guides (precision beliefs)


@dataclass
class RulesConfig:
    name: str = "rules"
    out_dir: str = "runs"
    seed: int = 0
    device: str = "cpu"
    method: str = "amal"  # one of RULE_METHODS
    progress: bool = True
    threads: int | None = None
    data: RulesDataConfig = field(default_factory=RulesDataConfig)
    features: dict[str, Any] = field(default_factory=lambda: {"name": "tfidf"})
    label_model: LabelModelConfig = field(default_factory=LabelModelConfig)
    model: dict[str, Any] = field(default_factory=lambda: {"name": "logreg"})
    teacher: OptimConfig = field(default_factory=lambda: OptimConfig(
        epochs=60, batch_size=16, optimizer="adam", lr=0.1, weight_decay=0.0, select="macro_f1"))
    rules: RulesOptions = field(default_factory=RulesOptions)
    amal: MetaConfig = field(default_factory=lambda: MetaConfig(update="normalized", warmup=2, every=2))
    baseline: dict[str, Any] = field(default_factory=dict)  # l2rw options: engine, val_batch, head, seed
    train: OptimConfig = field(default_factory=lambda: OptimConfig(
        epochs=30, batch_size=64, optimizer="adam", lr=0.01, weight_decay=0.0, select="macro_f1"))

    def validate(self) -> None:
        from amal.models.zoo import MODEL_NAMES
        from amal.weak.features import FEATURES
        from amal.weak.label_models import label_model_options

        _one_of("method", self.method, RULE_METHODS)
        _one_of("data.name", self.data.name, RULE_DATASETS)
        _one_of("data.uncovered", self.data.uncovered, ("drop", "keep", "error"))
        for key in ("n_labelled", "n_val", "n_test"):
            if getattr(self.data, key) < 1:
                raise AmalError(f"data.{key} must be >= 1, got {getattr(self.data, key)}")
        if self.data.lfs is not None:
            from amal.weak.lfsets import LF_SETS

            if self.data.name == "synthetic":
                raise AmalError("data.lfs does not apply to synthetic data (its LF votes are generated)")
            if ":" not in self.data.lfs and self.data.lfs not in LF_SETS:
                raise AmalError(f"unknown LF set {self.data.lfs!r} in data.lfs; known sets: "
                                f"{', '.join(sorted(LF_SETS))}, or 'module:function'")
        _one_of("features.name", self.features.get("name", "tfidf"), sorted(FEATURES))
        known = label_model_options(self.label_model.name)  # also checks the name
        unknown = sorted(set(self.label_model.options) - set(known))
        if unknown:
            raise AmalError(f"unknown config key 'label_model.options.{unknown[0]}' for label model "
                            f"{self.label_model.name!r} (known: {', '.join(known)})")
        _one_of("model.name", self.model.get("name"), [n for n in MODEL_NAMES if n in ("logreg", "mlp")])
        if self.rules.temperature <= 0:
            raise AmalError(f"rules.temperature must be positive, got {self.rules.temperature}")
        if not 0 <= self.rules.fixed_weight <= 1:
            raise AmalError(f"rules.fixed_weight must be in [0, 1], got {self.rules.fixed_weight}")
        if self.rules.labelled_weight < 0:
            raise AmalError(f"rules.labelled_weight must be >= 0, got {self.rules.labelled_weight}")
        if self.rules.jl_lm_lr <= 0:
            raise AmalError(f"rules.jl_lm_lr must be positive, got {self.rules.jl_lm_lr}")
        bad = sorted(set(self.rules.lambda_init) - {"lm", "lm_soft", "kd", "lf"})
        if bad:
            raise AmalError(f"unknown config key 'rules.lambda_init.{bad[0]}' (known: lm, lm_soft, kd, lf)")
        if self.method == "l2rw":
            extra = sorted(set(self.baseline) - {"engine", "val_batch", "head", "seed"})
            if extra:
                raise AmalError(f"unknown config key 'baseline.{extra[0]}' for method 'l2rw' "
                                "(known: engine, head, seed, val_batch)")
        elif self.baseline:
            raise AmalError(f"baseline: options only apply to method 'l2rw', not {self.method!r}")
        if self.threads is not None and self.threads < 1:
            raise AmalError(f"threads must be >= 1, got {self.threads}")
        check_meta(self.amal)
        check_optim("train", self.train)
        check_optim("teacher", self.teacher)


def rules_config_from(data: dict[str, Any] | None = None, overrides: list[str] | None = None,
                      **top: Any) -> RulesConfig:
    """``data`` (a user mapping, merged into the defaults) with ``key=value`` overrides and top-level values;
    validated."""
    base = to_dict(RulesConfig())
    if data:
        _merge(base, data, "")
    for o in overrides or []:
        apply_override(base, o)
    base.update(top)
    cfg = from_dict(RulesConfig, base)
    cfg.validate()
    return cfg


def load_rules_config(path: str | None, overrides: list[str] | None = None) -> RulesConfig:
    return rules_config_from(read_yaml_config(path) if path is not None else None, overrides)
