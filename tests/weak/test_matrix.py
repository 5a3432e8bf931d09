"""LF-matrix checks and helpers: shapes, values, dtypes, scores, labels, coverage, vote counts, LF classes."""

import numpy as np
import pytest
import torch

from amal.errors import AmalError
from amal.weak.matrix import (
    ABSTAIN,
    check_labels,
    check_lf_matrix,
    check_scores,
    covered,
    lf_classes,
    uncovered_error,
    vote_counts,
)

L_EX = np.array([[0, 1, 0],
                 [-1, -1, 2],
                 [1, 1, -1],
                 [-1, -1, -1]])


# --- check_lf_matrix ------------------------------------------------------------------------------------------


def test_abstain_constant():
    assert ABSTAIN == -1


def test_valid_matrix_is_returned_as_int64():
    out = check_lf_matrix(L_EX, 3)
    assert out.dtype == np.int64
    assert out.tolist() == L_EX.tolist()


def test_list_input_accepted():
    assert check_lf_matrix([[0, -1], [1, 1]], 2).tolist() == [[0, -1], [1, 1]]


def test_one_d_input_error():
    with pytest.raises(AmalError, match=r"LF matrix must be 2-D \(examples × LFs\), got shape \(3,\)"):
        check_lf_matrix(np.array([0, 1, -1]))


def test_three_d_input_error():
    with pytest.raises(AmalError, match=r"must be 2-D .*got shape \(2, 2, 2\)"):
        check_lf_matrix(np.zeros((2, 2, 2), dtype=int))


def test_zero_lf_columns_error():
    with pytest.raises(AmalError, match="LF matrix has no LF columns"):
        check_lf_matrix(np.zeros((4, 0), dtype=int))


def test_what_names_the_matrix():
    with pytest.raises(AmalError, match="unlabelled votes has no LF columns"):
        check_lf_matrix(np.zeros((4, 0), dtype=int), what="unlabelled votes")


def test_wrong_n_lfs_error():
    with pytest.raises(AmalError, match="has 3 LF columns, expected 2"):
        check_lf_matrix(L_EX, 3, n_lfs=2)
    assert check_lf_matrix(L_EX, 3, n_lfs=3).shape == (4, 3)


def test_wrong_n_rows_error():
    with pytest.raises(AmalError, match="has 4 rows, expected 5"):
        check_lf_matrix(L_EX, 3, n_rows=5)
    assert check_lf_matrix(L_EX, 3, n_rows=4).shape == (4, 3)


def test_values_below_minus_one_error():
    L = np.array([[0, 0], [0, -2]])
    with pytest.raises(AmalError, match=r"LF matrix\[1, 1\] = -2: values must be -1 or a class index >= 0"):
        check_lf_matrix(L)


def test_values_below_minus_one_error_with_n_classes():
    L = np.array([[0, -3], [0, 0]])
    with pytest.raises(AmalError, match=r"LF matrix\[0, 1\] = -3: values must be -1 or 0..1"):
        check_lf_matrix(L, 2)


def test_values_at_or_above_n_classes_error_with_position():
    L = np.array([[0, 1, -1],
                  [1, 0, 0],
                  [0, -1, 2]])
    with pytest.raises(AmalError, match=r"LF matrix\[2, 2\] = 2: values must be -1 or 0..1"):
        check_lf_matrix(L, 2)


def test_first_bad_position_in_row_major_order():
    L = np.array([[0, 0, 0],
                  [0, 5, 7],
                  [9, 0, 0]])
    with pytest.raises(AmalError, match=r"\[1, 1\] = 5"):
        check_lf_matrix(L, 3)


def test_large_values_fine_without_n_classes():
    assert check_lf_matrix(np.array([[7, -1]])).tolist() == [[7, -1]]


def test_integral_floats_accepted_and_converted():
    out = check_lf_matrix(np.array([[0.0, -1.0], [1.0, 2.0]]), 3)
    assert out.dtype == np.int64
    assert out.tolist() == [[0, -1], [1, 2]]


def test_non_integral_floats_rejected():
    with pytest.raises(AmalError, match="must hold integers .*found non-integer values"):
        check_lf_matrix(np.array([[0.0, 0.5]]), 2)


def test_nan_rejected():
    with pytest.raises(AmalError, match="found non-integer values"):
        check_lf_matrix(np.array([[0.0, np.nan]]), 2)


def test_inf_rejected():
    with pytest.raises(AmalError, match="found non-integer values"):
        check_lf_matrix(np.array([[np.inf, 0.0]]))


def test_string_dtype_rejected():
    with pytest.raises(AmalError, match=r"must hold integers \(-1 = abstain, 0..C-1 = class\), got dtype <U"):
        check_lf_matrix(np.array([["0", "1"]]))


def test_bool_matrix_rejected():  # a mask is ambiguous: False would read as a vote for class 0
    with pytest.raises(AmalError, match="got dtype bool"):
        check_lf_matrix(np.array([[True, False]]))


def test_object_dtype_rejected():
    with pytest.raises(AmalError, match="got dtype object"):
        check_lf_matrix(np.array([[None, 1]], dtype=object))


def test_torch_tensor_accepted():
    t = torch.tensor([[0, -1], [1, 1]])
    out = check_lf_matrix(t, 2)
    assert isinstance(out, np.ndarray)
    assert out.dtype == np.int64
    assert out.tolist() == [[0, -1], [1, 1]]


def test_torch_tensor_with_grad_and_float_accepted():
    t = torch.tensor([[0.0, -1.0]], requires_grad=True)
    assert check_lf_matrix(t, 1).tolist() == [[0, -1]]


def test_torch_tensor_bad_value_error():
    with pytest.raises(AmalError, match=r"\[0, 0\] = 4"):
        check_lf_matrix(torch.tensor([[4, 0]]), 2)


def test_zero_rows_allowed():
    assert check_lf_matrix(np.zeros((0, 2), dtype=int), 2).shape == (0, 2)


# --- check_scores ---------------------------------------------------------------------------------------------


def test_check_scores_valid():
    L = np.array([[0, -1], [1, 1]])
    S = [[0.5, 0.0], [1.0, 0.25]]
    out = check_scores(S, L)
    assert out.dtype == np.float64
    assert out.tolist() == S


def test_check_scores_torch_input():
    L = np.array([[0, -1]])
    assert check_scores(torch.tensor([[0.5, 0.0]]), L).tolist() == [[0.5, 0.0]]


def test_check_scores_shape_mismatch():
    with pytest.raises(AmalError, match=r"LF scores have shape \(2, 3\) but the LF matrix has \(2, 2\)"):
        check_scores(np.zeros((2, 3)), np.zeros((2, 2), dtype=int))


def test_check_scores_nan():
    S = np.array([[0.5, 0.5], [np.nan, 0.5]])
    with pytest.raises(AmalError, match=r"LF scores\[1, 0\] = nan: scores must be finite and in \[0, 1\]"):
        check_scores(S, np.zeros((2, 2), dtype=int))


@pytest.mark.parametrize("bad, shown", [(1.5, "1.5"), (-0.25, "-0.25")])
def test_check_scores_out_of_range(bad, shown):
    S = np.array([[0.5, bad]])
    with pytest.raises(AmalError, match=rf"LF scores\[0, 1\] = {shown}: scores must be finite"):
        check_scores(S, np.zeros((1, 2), dtype=int))


def test_check_scores_what():
    with pytest.raises(AmalError, match=r"U scores\[0, 0\]"):
        check_scores([[2.0]], np.zeros((1, 1), dtype=int), what="U scores")


# --- check_labels ---------------------------------------------------------------------------------------------


def test_check_labels_valid():
    out = check_labels([0, 2, 1], 3, 3)
    assert out.dtype == np.int64
    assert out.tolist() == [0, 2, 1]


def test_check_labels_torch():
    assert check_labels(torch.tensor([1, 0]), 2, 2).tolist() == [1, 0]


def test_check_labels_shape_error():
    with pytest.raises(AmalError, match=r"labels have shape \(2,\), expected \(3,\)"):
        check_labels([0, 1], 2, 3)
    with pytest.raises(AmalError, match=r"gold have shape \(1, 2\), expected \(2,\)"):
        check_labels([[0, 1]], 2, 2, what="gold")


@pytest.mark.parametrize("y", [[0, -1], [0, 2], [0.0, 1.0]])
def test_check_labels_value_error(y):
    with pytest.raises(AmalError, match=r"labels must be class indices in \[0, 2\)"):
        check_labels(y, 2, 2)


def test_check_labels_empty_ok():
    assert check_labels(np.zeros(0, dtype=int), 2, 0).shape == (0,)


# --- covered / uncovered_error --------------------------------------------------------------------------------


def test_covered():
    assert covered(L_EX).tolist() == [True, True, True, False]


def test_uncovered_error_message():
    L = np.array([[0, -1],
                  [-1, -1],
                  [1, -1],
                  [-1, -1],
                  [-1, -1]])
    err = uncovered_error(L, "U matrix")
    assert isinstance(err, AmalError)
    msg = str(err)
    assert msg.startswith("U matrix: 3 row(s) where every LF abstains (first: row 1)")
    assert "uncovered='drop'" in msg
    assert "\n" not in msg


# --- vote_counts ----------------------------------------------------------------------------------------------


def test_vote_counts_unweighted():
    assert vote_counts(L_EX, 3).tolist() == [[2, 1, 0],
                                             [0, 0, 1],
                                             [0, 2, 0],
                                             [0, 0, 0]]


def test_vote_counts_weighted():
    out = vote_counts(L_EX, 3, weights=[0.5, 2.0, 3.0])
    np.testing.assert_allclose(out, [[3.5, 2.0, 0.0],
                                     [0.0, 0.0, 3.0],
                                     [0.0, 2.5, 0.0],
                                     [0.0, 0.0, 0.0]])


def test_vote_counts_more_classes_than_voted():
    out = vote_counts(np.array([[1, 1]]), 4)
    assert out.shape == (1, 4)
    assert out.tolist() == [[0, 2, 0, 0]]


# --- lf_classes -----------------------------------------------------------------------------------------------


def test_lf_classes_inferred_from_votes():
    out = lf_classes(L_EX, 3)
    assert out.dtype == bool
    assert out.tolist() == [[True, True, False],
                            [False, True, False],
                            [True, False, True]]


def test_lf_classes_declared_overrides_votes():
    out = lf_classes(L_EX, 3, [None, (0, 2), None])
    assert out.tolist() == [[True, True, False],
                            [True, False, True],
                            [True, False, True]]


def test_lf_classes_short_declared_list_infers_the_rest():
    out = lf_classes(L_EX, 3, [(2,)])
    assert out.tolist() == [[False, False, True],
                            [False, True, False],
                            [True, False, True]]


def test_lf_classes_never_firing_lf():
    out = lf_classes(np.array([[-1, 0], [-1, 1]]), 2)
    assert out.tolist() == [[False, False], [True, True]]


def test_lf_classes_declared_out_of_range_error():
    with pytest.raises(AmalError, match=r"LF 1 declares classes \[3\] outside 0..2"):
        lf_classes(L_EX, 3, [None, (0, 3), None])
