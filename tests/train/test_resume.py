"""An interrupted-then-resumed run must equal the uninterrupted run: weights, Λ and metrics."""

import pytest
import torch

from amal.data.datasets import load_dataset
from amal.distill.recipes import train_student
from amal.models import MLP
from amal.train.config import RunConfig


class Interrupt(Exception):
    pass


class Evil:
    """Stands for any arbitrary object a malicious checkpoint might unpickle."""


def _cfg(method: str) -> RunConfig:
    cfg = RunConfig(method=method, progress=False, seed=3)
    cfg.model = {"name": "mlp", "hidden": [16], "dropout": 0.2}  # dropout: the RNG state must be restored too
    cfg.train.epochs = 5
    cfg.train.batch_size = 128
    cfg.amal.every = 2
    cfg.amal.warmup = 1
    cfg.amal.update = "adam"  # per-entry optimiser state must survive the restart as well
    return cfg


def _run(cfg, splits, teacher, run_dir, stop_after=None, resume=False):
    import amal.train.trainer as trainer_mod

    original = trainer_mod.Trainer.fit

    def fit(self, resume=False, on_epoch_end=None):
        def hook(epoch):
            if stop_after is not None and epoch == stop_after:
                raise Interrupt

        return original(self, resume=resume, on_epoch_end=hook)

    trainer_mod.Trainer.fit = fit
    try:
        return train_student(cfg, splits, [teacher], str(run_dir), torch.device("cpu"), resume=resume)
    finally:
        trainer_mod.Trainer.fit = original


@pytest.mark.parametrize("method", ["amal", "kd"])
def test_interrupted_then_resumed_equals_uninterrupted(tmp_path, method):
    splits = load_dataset("digits", seed=0, n_train=400)
    torch.manual_seed(0)
    teacher = MLP(64, 10, hidden=(32,))
    cfg = _cfg(method)
    full = _run(cfg, splits, teacher, tmp_path / "full")
    with pytest.raises(Interrupt):
        _run(cfg, splits, teacher, tmp_path / "cut", stop_after=2)
    torch.manual_seed(12345)  # a different global RNG state must not matter after the restore
    resumed = _run(cfg, splits, teacher, tmp_path / "cut", resume=True)

    a = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert torch.equal(a["meta"]["table"]["values"], b["meta"]["table"]["values"])
    if method == "amal":
        assert not torch.allclose(a["meta"]["table"]["values"], a["meta"]["table"]["values"][0])  # Λ did move
    strip = [{k: v for k, v in r.items() if "seconds" not in k} for r in full.result.rows]
    assert strip == [{k: v for k, v in r.items() if "seconds" not in k} for r in resumed.result.rows]
    assert resumed.result.best_epoch == full.result.best_epoch


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    from amal.train import checkpoint

    path = tmp_path / "c.pt"
    checkpoint.atomic_save({"a": torch.ones(2)}, str(path))

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint.torch, "save", boom)
    with pytest.raises(OSError):
        checkpoint.atomic_save({"a": torch.zeros(2)}, str(path))
    assert torch.equal(checkpoint.safe_load(str(path))["a"], torch.ones(2))  # the old file survives intact
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary left behind


def test_safe_load_refuses_pickled_objects(tmp_path):
    from amal.errors import AmalError
    from amal.train.checkpoint import safe_load

    path = tmp_path / "evil.pt"
    torch.save({"obj": Evil()}, path)  # a pickled arbitrary object
    with pytest.raises(AmalError, match="cannot load checkpoint"):
        safe_load(str(path))
    with pytest.raises(AmalError, match="not found"):
        safe_load(str(tmp_path / "missing.pt"))


def test_augmented_run_resumes_exactly(tmp_path):
    """Augmentation draws from a per-epoch seeded generator, so an interrupted run still resumes exactly."""
    from amal.core.mixer import AMAL
    from amal.data.augment import Augment
    from amal.data.datasets import TensorData, make_splits
    from amal.losses import CrossEntropy
    from amal.models import SmallCNN
    from amal.train.config import OptimConfig
    from amal.train.trainer import Trainer, make_optimizer

    x = torch.rand(120, 1, 8, 8)
    y = torch.randint(0, 3, (120,))
    splits = make_splits(x, y, seed=0)
    cfg = OptimConfig(epochs=3, batch_size=32)

    def run(run_dir, stop=None):
        torch.manual_seed(0)
        model = SmallCNN(1, 3, width=(4,))
        opt = make_optimizer(model, cfg)
        meta = AMAL(model, [CrossEntropy()], len(splits.train), None, optimizer=opt, schedule="fixed",
                    lambda_init={"ce": 1.0})
        tr = Trainer(model, meta, opt, TensorData(splits.train.x, splits.train.y), splits.val, cfg,
                     run_dir=str(run_dir), augment=Augment(pad=2))

        def hook(epoch):
            if stop is not None and epoch == stop:
                raise Interrupt

        tr.fit(resume=True, on_epoch_end=hook)
        return model

    full = run(tmp_path / "a")
    with pytest.raises(Interrupt):
        run(tmp_path / "b", stop=0)
    resumed = run(tmp_path / "b")
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k
