"""The LF analysis table, checked against figures computed by hand on a 6 × 3 matrix."""

import numpy as np
import pytest
import torch

from amal.errors import AmalError
from amal.weak.analysis import LFAnalysis, lf_accuracies, lf_analysis

# rows r0..r5, LFs a, b, c; gold -1 = unknown
L = np.array([[1, 1, -1],    # r0 gold 1: a, b fire and agree (both right)
              [1, 0, 0],     # r1 gold 0: all fire, a disagrees (a wrong, b and c right)
              [-1, -1, 0],   # r2 unknown: only c fires
              [0, -1, -1],   # r3 gold 0: only a fires (right)
              [-1, -1, -1],  # r4 gold 1: nothing fires
              [1, 1, 0]])    # r5 unknown: all fire, c disagrees
GOLD = np.array([1, 0, -1, 0, 1, -1])
NAMES = ["lf_a", "lf_b", "lf_c"]

# By hand. fired rows: a {0,1,3,5}, b {0,1,5}, c {1,2,5}; rows with >= 2 votes {0,1,5}; conflicting rows {1,5}.
EXPECTED = {
    "lf_a": {"polarity": [0, 1], "coverage": 4 / 6, "overlaps": 3 / 6, "conflicts": 2 / 6,
             "n_gold": 3, "correct": 2, "accuracy": 2 / 3},   # gold rows fired: r0 ok, r1 wrong, r3 ok
    "lf_b": {"polarity": [0, 1], "coverage": 3 / 6, "overlaps": 3 / 6, "conflicts": 2 / 6,
             "n_gold": 2, "correct": 2, "accuracy": 1.0},     # r0 ok, r1 ok
    "lf_c": {"polarity": [0], "coverage": 3 / 6, "overlaps": 2 / 6, "conflicts": 2 / 6,
             "n_gold": 1, "correct": 1, "accuracy": 1.0},     # r1 ok
}
# overall: rows with a vote {0,1,2,3,5}; votes on gold rows: r0 2 + r1 3 + r3 1 + r4 0 = 6, correct 2 + 2 + 1 = 5
OVERALL = {"polarity": [0, 1], "coverage": 5 / 6, "overlaps": 3 / 6, "conflicts": 2 / 6,
           "n_gold": 6, "correct": 5, "accuracy": 5 / 6}


@pytest.fixture
def analysis():
    return lf_analysis(L, GOLD, names=NAMES)


@pytest.mark.parametrize("j, name", list(enumerate(NAMES)))
def test_per_lf_rows(analysis, j, name):
    row = analysis.rows[j]
    assert row["name"] == name
    exp = EXPECTED[name]
    assert row["polarity"] == exp["polarity"]
    for key in ("coverage", "overlaps", "conflicts", "accuracy"):
        assert row[key] == pytest.approx(exp[key]), key
    assert row["n_gold"] == exp["n_gold"]
    assert row["correct"] == exp["correct"]


def test_overall_row(analysis):
    o = analysis.overall
    assert o["name"] == "all"
    assert o["polarity"] == OVERALL["polarity"]
    for key in ("coverage", "overlaps", "conflicts", "accuracy"):
        assert o[key] == pytest.approx(OVERALL[key]), key
    assert o["n_gold"] == OVERALL["n_gold"]
    assert o["correct"] == OVERALL["correct"]


def test_counts(analysis):
    assert isinstance(analysis, LFAnalysis)
    assert analysis.n == 6
    assert analysis.n_gold == 4  # rows with a known label: r0, r1, r3, r4
    assert len(analysis.rows) == 3


def test_default_names():
    a = lf_analysis(L, GOLD)
    assert [r["name"] for r in a.rows] == ["lf0", "lf1", "lf2"]


def test_torch_and_list_inputs_give_the_same_figures(analysis):
    a = lf_analysis(torch.tensor(L), GOLD.tolist(), names=NAMES)
    assert a.rows == analysis.rows
    assert a.overall == analysis.overall


def test_without_gold_accuracy_is_none():
    a = lf_analysis(L)
    assert a.n_gold == 0
    assert all(r["accuracy"] is None and r["n_gold"] == 0 and r["correct"] == 0 for r in a.rows)
    assert a.overall["accuracy"] is None
    # coverage etc. do not depend on gold
    assert a.rows[0]["coverage"] == pytest.approx(4 / 6)
    assert a.overall["conflicts"] == pytest.approx(2 / 6)


def test_lf_with_no_votes_on_gold_rows():
    # lf c fires only on r2, whose label is unknown
    L2 = np.array([[0, -1], [1, 0], [-1, -1]])
    a = lf_analysis(L2, [0, -1, 1])
    assert a.rows[0]["n_gold"] == 1 and a.rows[0]["accuracy"] == 1.0
    assert a.rows[1]["n_gold"] == 0 and a.rows[1]["accuracy"] is None


def test_never_firing_lf_has_empty_polarity():
    a = lf_analysis(np.array([[0, -1], [1, -1]]))
    assert a.rows[1]["polarity"] == []
    assert a.rows[1]["coverage"] == 0.0


def test_multiclass_conflict_detection():
    # three classes: a row where votes are 0 and 2 conflicts; a row with 1, 1 does not
    L3 = np.array([[0, 2, -1], [1, 1, -1], [2, -1, 2]])
    a = lf_analysis(L3, n_classes=3)
    assert a.overall["conflicts"] == pytest.approx(1 / 3)
    assert a.overall["overlaps"] == pytest.approx(1.0)
    assert [r["conflicts"] for r in a.rows] == pytest.approx([1 / 3, 1 / 3, 0.0])


def test_lf_accuracies(analysis):
    assert lf_accuracies(L, GOLD) == pytest.approx([2 / 3, 1.0, 1.0, 5 / 6])


def test_names_length_mismatch_error():
    with pytest.raises(AmalError, match="2 LF names for 3 LF columns"):
        lf_analysis(L, GOLD, names=["a", "b"])


def test_gold_shape_mismatch_error():
    with pytest.raises(AmalError, match=r"gold labels have shape \(5,\), expected \(6,\)"):
        lf_analysis(L, GOLD[:5])


def test_gold_out_of_range_error():
    with pytest.raises(AmalError, match=r"gold labels must be class indices in \[0, 2\)"):
        lf_analysis(L, [1, 0, -1, 2, 1, -1], n_classes=2)


def test_class_names_imply_n_classes():
    # a vote of 2 is out of range once class_names names two classes
    with pytest.raises(AmalError, match=r"LF matrix\[0, 0\] = 2"):
        lf_analysis([[2, 0]], class_names=["ham", "spam"])


# --- to_markdown ----------------------------------------------------------------------------------------------


def test_markdown_with_gold_and_class_names():
    md = lf_analysis(L, GOLD, names=NAMES, class_names=["ham", "spam"]).to_markdown()
    lines = md.splitlines()
    assert lines[0] == "| LF | polarity | coverage | overlaps | conflicts | votes on gold | accuracy (gold) |"
    assert lines[1] == "|---|---|---|---|---|---|---|"
    assert lines[2] == "| lf_a | ham,spam | 0.667 | 0.500 | 0.333 | 3 | 0.667 |"
    assert lines[3] == "| lf_b | ham,spam | 0.500 | 0.500 | 0.333 | 2 | 1.000 |"
    assert lines[4] == "| lf_c | ham | 0.500 | 0.333 | 0.333 | 1 | 1.000 |"
    assert lines[5] == "| **all LFs** | ham,spam | 0.833 | 0.500 | 0.333 | 6 | 0.833 |"
    assert len(lines) == 6


def test_markdown_numeric_polarity_without_class_names(analysis):
    md = analysis.to_markdown(digits=2)
    assert "| lf_c | 0 | 0.50 | 0.33 | 0.33 | 1 | 1.00 |" in md
    assert "| lf_a | 0,1 |" in md
    assert "ham" not in md


def test_markdown_hides_gold_columns_without_gold():
    md = lf_analysis(L, names=NAMES).to_markdown()
    assert "votes on gold" not in md and "accuracy (gold)" not in md
    assert md.splitlines()[0] == "| LF | polarity | coverage | overlaps | conflicts |"
    assert "| **all LFs** | 0,1 | 0.833 | 0.500 | 0.333 |" in md
    for name in NAMES:
        assert f"| {name} |" in md


def test_markdown_hides_gold_columns_when_all_unknown():
    md = lf_analysis(L, np.full(6, -1), names=NAMES).to_markdown()
    assert "accuracy (gold)" not in md


def test_markdown_empty_polarity_dash():
    md = lf_analysis(np.array([[0, -1], [1, -1]]), names=["fires", "silent"]).to_markdown()
    assert "| silent | — | 0.000 |" in md


def test_markdown_extra_accuracy_columns(analysis):
    analysis.extra_accuracy = {"U": [0.5, None, 1.0, 0.75], "test": [0.25, 0.5, float("nan"), 1.0]}
    lines = analysis.to_markdown().splitlines()
    assert lines[0].endswith("| accuracy (gold) | accuracy (U) | accuracy (test) |")
    assert lines[2].endswith("| 0.667 | 0.500 | 0.250 |")
    assert lines[3].endswith("| 1.000 | n/a | 0.500 |")
    assert lines[4].endswith("| 1.000 | 1.000 | n/a |")
    assert lines[5].startswith("| **all LFs** |")
    assert lines[5].endswith("| 0.833 | 0.750 | 1.000 |")


def test_markdown_extra_accuracy_without_gold():
    a = lf_analysis(L, names=NAMES)
    a.extra_accuracy = {"U": [0.1, 0.2, 0.3, 0.4]}
    lines = a.to_markdown().splitlines()
    assert lines[0] == "| LF | polarity | coverage | overlaps | conflicts | accuracy (U) |"
    assert lines[-1] == "| **all LFs** | 0,1 | 0.833 | 0.500 | 0.333 | 0.400 |"


def test_float_gold_labels_rejected():
    with pytest.raises(AmalError, match="gold labels must be integers"):
        lf_analysis(np.array([[0, 1]]), np.array([0.5]))
