"""Run configuration: nested dataclasses read from YAML (``yaml.safe_load``), with ``--set key=value``
overrides. Unknown keys and wrongly typed values are errors that name the key."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any

import yaml

from amal.core.mixer import MetaConfig
from amal.errors import AmalError


@dataclass
class DataConfig:
    name: str = "digits"
    data_dir: str | None = None
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    noise: float = 0.0
    n_train: int | None = None
    noise_type: str = "symmetric"  # symmetric | asymmetric (class c -> noise_pair[c], default c + 1 mod C)
    noise_pair: list[int] | None = None
    augment: bool | dict[str, Any] = False  # true: random crop (pad 4) + horizontal flip; or Augment options
    normalize: bool = False  # cifar10/cifar100: per-channel standardisation with training-set statistics
    download: bool = False  # cifar10/cifar100: fetch the official archive into data_dir when absent


@dataclass
class OptimConfig:
    epochs: int = 30
    batch_size: int = 64
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    scheduler: str = "cosine"
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.1
    amp: bool = False
    num_workers: int = 0
    select: str = "acc"  # validation metric that picks the best epoch: acc | macro_f1


@dataclass
class TeacherConfig:
    path: str | None = None  # a teacher file saved by amal (runs/<name>/teacher<i>.pt); else trained in the run
    model: dict[str, Any] = field(default_factory=lambda: {"name": "mlp", "hidden": [256, 256]})
    train: OptimConfig = field(default_factory=lambda: OptimConfig(epochs=40))
    noise: float | None = None  # train this teacher on labels with this much extra noise (a bad teacher)
    snapshots: list[int] = field(default_factory=list)  # epochs (1-based): one teacher per snapshot instead


@dataclass
class KDConfig:
    temperature: float = 4.0
    weight: float = 0.9  # λ_KD of the fixed-weight KD baseline (λ_CE = 1 − weight)


@dataclass
class TakdConfig:
    assistants: list[dict[str, Any]] = field(default_factory=lambda: [{"name": "mlp", "hidden": [96]}])


METHODS = ("ce", "kd", "amal", "kd_uniform", "dgkd", "superloss", "l2rw", "takd")


@dataclass
class RunConfig:
    name: str = "run"
    out_dir: str = "runs"
    seed: int = 0
    device: str = "cpu"
    method: str = "amal"  # one of METHODS
    progress: bool = True
    threads: int | None = None  # torch CPU threads; None keeps torch's default (1 is fastest for tiny models)
    data: DataConfig = field(default_factory=DataConfig)
    model: dict[str, Any] = field(default_factory=lambda: {"name": "mlp", "hidden": [32]})
    teachers: list[TeacherConfig] = field(default_factory=lambda: [TeacherConfig()])
    kd: KDConfig = field(default_factory=KDConfig)
    amal: MetaConfig = field(default_factory=MetaConfig)
    baseline: dict[str, Any] = field(default_factory=dict)  # options of dgkd / superloss / l2rw
    takd: TakdConfig = field(default_factory=TakdConfig)
    train: OptimConfig = field(default_factory=OptimConfig)

    def validate(self) -> None:
        """Check names and ranges now, so a typo fails before any teacher is trained."""
        from amal.data.datasets import DATASETS
        from amal.models.zoo import MODEL_NAMES

        _one_of("method", self.method, METHODS)
        if self.method in ("kd_uniform", "dgkd", "superloss", "l2rw"):
            from amal.distill.baselines import baseline_options

            shared = sorted({"weight", "temperature"} & set(self.baseline))
            if shared:
                raise AmalError(f"baseline.{shared[0]} is set by kd.{shared[0]}; remove it from baseline:")
            unknown = sorted(set(self.baseline) - set(baseline_options(self.method)))
            if unknown:
                raise AmalError(f"unknown config key 'baseline.{unknown[0]}' for method {self.method!r} "
                                f"(known: {', '.join(baseline_options(self.method))})")
        for i, spec in enumerate(self.takd.assistants):
            _one_of(f"takd.assistants.{i}.name", spec.get("name"), MODEL_NAMES)
        if self.method != "ce" and not self.teachers:
            raise AmalError(f"method {self.method!r} needs at least one teacher")
        _one_of("data.name", self.data.name, DATASETS)
        _one_of("data.noise_type", self.data.noise_type, ("symmetric", "asymmetric"))
        _in_range("data.noise", self.data.noise, 0.0, 1.0)
        _one_of("model.name", self.model.get("name"), MODEL_NAMES)
        check_meta(self.amal)
        if self.kd.temperature <= 0:
            raise AmalError(f"kd.temperature must be positive, got {self.kd.temperature}")
        _in_range("kd.weight", self.kd.weight, 0.0, 1.0, closed=True)
        if self.threads is not None and self.threads < 1:
            raise AmalError(f"threads must be >= 1, got {self.threads}")
        if self.data.name in ("cifar10", "cifar100") and not self.data.data_dir:
            raise AmalError(f"data.data_dir is required for {self.data.name} (the folder with the python archive)")
        sections = [("train", self.train)] + [(f"teachers.{i}.train", t.train) for i, t in enumerate(self.teachers)]
        for i, t in enumerate(self.teachers):
            _one_of(f"teachers.{i}.model.name", t.model.get("name"), MODEL_NAMES)
            if any(not 1 <= e <= t.train.epochs for e in t.snapshots):
                raise AmalError(f"teachers.{i}.snapshots must lie in 1..{t.train.epochs}, got {t.snapshots}")
            if t.noise is not None:
                _in_range(f"teachers.{i}.noise", t.noise, 0.0, 1.0)
        for name, o in sections:
            check_optim(name, o)


def check_meta(m: MetaConfig, prefix: str = "amal") -> None:
    """Names and ranges of an ``amal:`` section."""
    from amal.core.engines import ENGINES
    from amal.core.schedules import SCHEDULES
    from amal.core.updates import UPDATES

    _one_of(f"{prefix}.engine", m.engine, sorted(ENGINES))
    _one_of(f"{prefix}.schedule", m.schedule, SCHEDULES)
    _one_of(f"{prefix}.update", m.update, sorted(UPDATES))
    m.validate()
    if m.warmup < 0 or m.every < 1:
        raise AmalError(f"{prefix}.warmup must be >= 0 and {prefix}.every >= 1")
    if not 0 <= m.lambda_min < m.lambda_max:
        raise AmalError(f"{prefix}.lambda_min and {prefix}.lambda_max must satisfy 0 <= min < max")


def check_optim(name: str, o: OptimConfig) -> None:
    """Names and ranges of a ``train:``-style section."""
    if o.epochs < 1 or o.batch_size < 1 or o.lr <= 0:
        raise AmalError(f"{name}.epochs, {name}.batch_size and {name}.lr must be positive")
    _one_of(f"{name}.optimizer", o.optimizer, ("sgd", "adam"))
    _one_of(f"{name}.scheduler", o.scheduler, ("cosine", "multistep", "none"))
    _one_of(f"{name}.select", o.select, ("acc", "macro_f1"))
    if o.nesterov and (o.optimizer != "sgd" or o.momentum <= 0):
        raise AmalError(f"{name}.nesterov needs optimizer sgd with momentum > 0")


def _one_of(key: str, value: Any, choices: Any) -> None:
    if value not in choices:
        raise AmalError(f"{key} must be one of {list(choices)}, got {value!r}")


def _in_range(key: str, value: float, lo: float, hi: float, closed: bool = False) -> None:
    if not (lo <= value <= hi if closed else lo <= value < hi):
        raise AmalError(f"{key} must be in [{lo}, {hi}{']' if closed else ')'}, got {value}")


def _convert(value: Any, hint: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise AmalError(f"config key '{key}' must be a mapping, got {type(value).__name__}")
        return from_dict(hint, value, key + ".")
    if origin is list:
        if not isinstance(value, list):
            raise AmalError(f"config key '{key}' must be a list, got {type(value).__name__}")
        return [_convert(v, args[0] if args else Any, f"{key}.{i}") for i, v in enumerate(value)]
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(value, a, key)
            except AmalError as e:
                errors.append(str(e))
        raise AmalError(errors[0] if errors else f"config key '{key}' has a bad value {value!r}")
    if hint is Any or hint is typing.Any:
        return value
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):  # YAML 1.1 reads 5e-4 (no dot) as a string
        try:
            return float(value)
        except ValueError:
            raise AmalError(f"config key '{key}' must be float, got {value!r}") from None
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise AmalError(f"config key '{key}' must be a mapping, got {type(value).__name__}")
        return value
    if isinstance(hint, type) and not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise AmalError(f"config key '{key}' must be {getattr(hint, '__name__', hint)}, got {value!r}")
    return value


def from_dict(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise AmalError(f"unknown config key '{prefix}{unknown[0]}' (known here: {', '.join(sorted(names))})")
    kwargs = {k: _convert(v, hints[k], prefix + k) for k, v in data.items()}
    return cls(**kwargs)


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def apply_override(data: dict[str, Any], assignment: str) -> None:
    """``a.b.c=value`` (value parsed as YAML) into the nested mapping; list items by index."""
    if "=" not in assignment:
        raise AmalError(f"--set expects key=value, got {assignment!r}")
    key, raw = assignment.split("=", 1)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    parts = key.strip().split(".")
    node: Any = data
    for i, p in enumerate(parts[:-1]):
        if isinstance(node, list):
            if not p.isdigit() or int(p) >= len(node):
                raise AmalError(f"--set {key}: no list item {p!r}")
            node = node[int(p)]
        else:
            if p not in node or node[p] is None:
                node[p] = {}
            node = node[p]
        if not isinstance(node, dict | list):
            raise AmalError(f"--set {key}: '{'.'.join(parts[: i + 1])}' is not a section")
    last = parts[-1]
    if isinstance(node, list):
        if not last.isdigit() or int(last) >= len(node):
            raise AmalError(f"--set {key}: no list item {last!r}")
        node[int(last)] = value
    else:
        node[last] = value


def read_yaml_config(path: str) -> dict[str, Any]:
    """A YAML config file as a mapping (``yaml.safe_load``), with one-line errors for the usual problems."""
    try:
        with open(path, encoding="utf-8") as f:
            user = yaml.safe_load(f) or {}
    except FileNotFoundError:
        raise AmalError(f"config file not found: {path}") from None
    except yaml.YAMLError as e:
        raise AmalError(f"config file {path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(user, dict):
        raise AmalError(f"config file {path} must hold a mapping at the top level")
    return user


def load_config(path: str | None, overrides: list[str] | None = None) -> RunConfig:
    data: dict[str, Any] = to_dict(RunConfig())
    if path is not None:
        _merge(data, read_yaml_config(path), "")
    cfg = config_from_overrides(overrides or [], data)
    cfg.validate()
    return cfg


def config_from_overrides(overrides: list[str], data: dict[str, Any] | None = None, **top: Any) -> RunConfig:
    """Apply ``key=value`` overrides (and top-level values) to ``data`` (default: the defaults); not validated."""
    data = to_dict(RunConfig()) if data is None else data
    for o in overrides:
        apply_override(data, o)
    if isinstance(data.get("teachers"), list):  # items set whole by --set still inherit the defaults
        _merge(data, {"teachers": data["teachers"]}, "")
    data.update(top)
    return from_dict(RunConfig, data)


def _merge(base: dict[str, Any], user: dict[str, Any], prefix: str) -> None:
    """Deep-merge ``user`` into the defaults; unknown keys are kept so ``from_dict`` reports them."""
    for k, v in user.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict) and k not in ("model", "baseline"):
            _merge(base[k], v, prefix + k + ".")
        elif k == "teachers" and isinstance(v, list):
            default = to_dict(TeacherConfig())
            merged = []
            for item in v:
                d = {kk: (dict(vv) if isinstance(vv, dict) else vv) for kk, vv in default.items()}
                if isinstance(item, dict):
                    _merge(d, item, prefix + k + ".")
                    merged.append(d)
                else:
                    merged.append(item)
            base[k] = merged
        else:
            base[k] = v
