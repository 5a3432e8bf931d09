"""KD recipes: terms per teacher, baselines through the same code path, several teachers mixed by AMAL."""

import pytest
import torch
import torch.nn.functional as F
from conftest import train_with_amal
from torch import nn
from torch.utils.data import DataLoader

from amal.data import Indexed, make_splits
from amal.distill.recipes import kd_terms, make_meta
from amal.losses import CrossEntropy, Distillation
from amal.models import MLP
from amal.train.config import RunConfig

C, DIM = 4, 6
_RULE = torch.randn(DIM, C, generator=torch.Generator().manual_seed(7))


def _label(x):
    return (x @ _RULE).argmax(1)


class _Oracle(nn.Module):
    """A confident teacher that is right, or (``shift`` > 0) always wrong by a fixed class shift."""

    def __init__(self, shift=0):
        super().__init__()
        self.shift = shift

    def forward(self, x):
        return 6.0 * F.one_hot((_label(x) + self.shift) % C, C).float()


def _splits(n=700):
    x = torch.randn(n, DIM, generator=torch.Generator().manual_seed(0))
    return make_splits(x, _label(x), test_fraction=0.2, val_fraction=0.3, seed=0)


def test_kd_terms_one_column_per_teacher():
    assert [t.name for t in kd_terms([_Oracle()], 4.0)] == ["ce", "kd"]
    terms = kd_terms([_Oracle(), _Oracle(1), _Oracle(2)], 2.0)
    assert [t.name for t in terms] == ["ce", "kd0", "kd1", "kd2"]
    assert isinstance(terms[0], CrossEntropy) and all(isinstance(t, Distillation) and t.T == 2.0 for t in terms[1:])


@pytest.mark.parametrize(
    "method, columns, row",
    [("ce", ["ce"], [1.0]), ("kd", ["ce", "kd"], [0.1, 0.9]), ("amal", ["ce", "kd"], [0.1, 0.9])],
)
def test_methods_share_one_code_path(method, columns, row):
    splits = _splits()
    cfg = RunConfig(method=method)
    model = MLP(DIM, C, hidden=(8,))
    meta = make_meta(cfg, model, [_Oracle()], splits, torch.optim.SGD(model.parameters(), lr=0.1))
    assert meta.table.columns == columns
    assert torch.allclose(meta.table.values[0], torch.tensor(row))
    assert meta.schedule.name == ("epochs" if method == "amal" else "fixed")


def test_fixed_kd_loss_is_hinton_mixture():
    splits = _splits()
    cfg = RunConfig(method="kd")
    cfg.kd.weight, cfg.kd.temperature = 0.7, 3.0
    model = MLP(DIM, C, hidden=(8,))
    teacher = nn.Linear(DIM, C)
    meta = make_meta(cfg, model, [teacher], splits, torch.optim.SGD(model.parameters(), lr=0.1))
    x, y = splits.train.x[:16], splits.train.y[:16]
    loss, logits = meta.loss((x, y, torch.arange(16)), lr=0.1)
    with torch.no_grad():
        t = teacher(x)
    kl = F.kl_div(F.log_softmax(logits / 3, 1), F.softmax(t / 3, 1), reduction="batchmean")
    expected = 0.3 * F.cross_entropy(logits, y) + 0.7 * 9.0 * kl
    assert torch.allclose(loss, expected, atol=1e-5)


def test_amal_trusts_the_good_teacher_more_than_the_bad_one():
    splits = _splits()
    cfg = RunConfig(method="amal")
    cfg.amal.update, cfg.amal.every, cfg.amal.warmup = "normalized", 1, 1
    torch.manual_seed(0)
    model = MLP(DIM, C, hidden=(32,))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    meta = make_meta(cfg, model, [_Oracle(0), _Oracle(1)], splits, opt)
    loader = DataLoader(Indexed(splits.train), batch_size=50, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    train_with_amal(meta, opt, loader, 4)
    good, bad = meta.table.column("kd0"), meta.table.column("kd1")
    assert good.mean() - bad.mean() > 0.5, meta.table.stats()
    assert (good > bad).float().mean() > 0.9
