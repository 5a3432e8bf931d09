"""LambdaTable: initialisation, projection (clamp, normalisation), row addressing, stats and state."""

import pytest
import torch

from amal.core.weights import DEFAULT_BOUNDS, LambdaTable
from amal.errors import AmalError

LO, HI = DEFAULT_BOUNDS


def _paper(n=6, columns=("ce", "kd1", "kd2"), **kw):
    return LambdaTable.paper_init(n, list(columns), supervised=["ce"], **kw)


def test_paper_init_aux_and_supervised_columns():
    t = _paper(n=5)
    assert t.values.shape == (5, 3)
    assert torch.allclose(t.column("ce"), torch.full((5,), 0.1))
    assert torch.allclose(t.column("kd1"), torch.full((5,), 0.9))
    assert torch.allclose(t.column("kd2"), torch.full((5,), 0.9))
    assert torch.allclose(t.init_row, torch.tensor([0.1, 0.9, 0.9]))


def test_paper_init_custom_aux():
    t = _paper(n=2, aux=0.7)
    assert torch.allclose(t.values, torch.tensor([[0.3, 0.7, 0.7]] * 2))


def test_unknown_column_raises():
    with pytest.raises(AmalError, match="no Λ column"):
        _paper().column("nope")


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"n": 0}, "at least one"),
        ({"columns": ["a", "a"]}, "unique"),
        ({"columns": []}, "unique"),
        ({"init": {"a": 1.0}}, "no initial"),
        ({"bounds": (1.0, 1.0)}, "min < max"),
    ],
)
def test_constructor_rejects_bad_input(kw, match):
    args = {"n": 3, "columns": ["a", "b"], "init": {"a": 1.0, "b": 1.0}} | kw
    with pytest.raises(AmalError, match=match):
        LambdaTable(**args)


def test_set_rows_clamps_to_bounds():
    t = _paper(n=3)
    t.set_rows(torch.tensor([0, 2]), torch.tensor([[-5.0, 0.5, 9.0], [3.0, -1e-3, 1.0]]))
    assert torch.allclose(t.values[0], torch.tensor([LO, 0.5, HI]))
    assert torch.allclose(t.values[2], torch.tensor([HI, LO, 1.0]))
    assert t.values.min() >= LO and t.values.max() <= HI


def test_custom_bounds_clamp_initial_row_too():
    t = LambdaTable(2, ["a", "b"], {"a": 5.0, "b": -1.0}, bounds=(0.0, 1.0))
    assert torch.equal(t.values, torch.tensor([[1.0, 0.0]] * 2))


def test_normalize_keeps_initial_row_sum():
    t = _paper(n=4, normalize=True)
    target = float(t.init_row.sum())  # 0.1 + 0.9 + 0.9
    rows = torch.tensor([[0.3, 0.2, 0.1], [1.0, 1.0, 1.0], [0.05, 1.5, 0.4]])
    t.set_rows(torch.tensor([0, 1, 3]), rows)
    sums = t.values.sum(dim=1)
    assert torch.allclose(sums, torch.full((4,), target), atol=1e-6)
    # proportions within a row are kept
    assert torch.allclose(t.values[0] / t.values[0, 0], rows[0] / rows[0, 0], atol=1e-6)


def test_without_normalize_row_sum_is_free():
    t = _paper(n=1)
    t.set_rows(torch.tensor([0]), torch.tensor([[0.3, 0.2, 0.1]]))
    assert torch.allclose(t.values[0], torch.tensor([0.3, 0.2, 0.1]))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_set_rows_rejects_non_finite(bad):
    t = _paper(n=3)
    before = t.values.clone()
    with pytest.raises(AmalError, match="non-finite"):
        t.set_rows(torch.tensor([1]), torch.tensor([[0.5, bad, 0.5]]))
    assert torch.equal(t.values, before)


def test_rows_by_index_touch_only_those_rows():
    t = _paper(n=8)
    before = t.values.clone()
    idx = torch.tensor([6, 1, 3])
    new = torch.tensor([[0.2, 0.3, 0.4], [0.5, 0.6, 0.7], [1.1, 1.2, 1.3]])
    t.set_rows(idx, new)
    assert torch.allclose(t.rows(idx), new)
    assert torch.allclose(t.values[6], new[0]) and torch.allclose(t.values[1], new[1])
    others = torch.tensor([i for i in range(8) if i not in idx.tolist()])
    assert torch.equal(t.values[others], before[others])


def test_stats_keys_and_values():
    t = _paper(n=10)
    t.set_rows(torch.arange(10), torch.stack([torch.linspace(0.1, 1.0, 10)] * 3, dim=1))
    s = t.stats()
    assert set(s) == {"ce", "kd1", "kd2"}
    for col in s.values():
        assert set(col) == {"mean", "std", "min", "p10", "p50", "p90", "max"}
        assert col["min"] == pytest.approx(0.1) and col["max"] == pytest.approx(1.0)
        assert col["mean"] == pytest.approx(0.55)
        assert col["min"] <= col["p10"] <= col["p50"] <= col["p90"] <= col["max"]


def test_stats_single_row_has_zero_std():
    assert _paper(n=1).stats()["ce"]["std"] == 0.0


def test_state_dict_roundtrip():
    t = _paper(n=5)
    t.set_rows(torch.tensor([0, 4]), torch.tensor([[0.7, 0.2, 1.9], [0.3, 0.4, 0.5]]))
    state = t.state_dict()
    assert state["columns"] == ["ce", "kd1", "kd2"]
    assert list(state["bounds"]) == [LO, HI]
    fresh = _paper(n=5)
    fresh.load_state_dict(state)
    assert torch.equal(fresh.values, t.values)


def test_state_dict_is_a_snapshot():
    t = _paper(n=2)
    state = t.state_dict()
    t.set_rows(torch.tensor([0]), torch.tensor([[1.0, 1.0, 1.0]]))
    assert torch.allclose(state["values"][0], torch.tensor([0.1, 0.9, 0.9]))


def test_load_state_dict_rejects_other_columns():
    state = _paper(n=5).state_dict()
    other = _paper(n=5, columns=("ce", "kd1", "kd3"))
    with pytest.raises(AmalError, match="columns differ"):
        other.load_state_dict(state)


def test_load_state_dict_rejects_other_shape():
    state = _paper(n=5).state_dict()
    other = _paper(n=6)
    before = other.values.clone()
    with pytest.raises(AmalError, match="shape differs"):
        other.load_state_dict(state)
    assert torch.equal(other.values, before)
