"""Labeling functions: keyword/regex LFs, the decorator, vectorized and continuous LFs, and apply_lfs."""

import numpy as np
import pytest

from amal.errors import AmalError
from amal.weak.lf import (
    ABSTAIN,
    KeywordLF,
    LabelingFunction,
    LFOutput,
    RegexLF,
    apply_lfs,
    labeling_function,
)

HAM, SPAM = 0, 1


def votes(lf, examples):
    return lf.apply(examples)[0].tolist()


# --- Snorkel convention -----------------------------------------------------------------------------------------


def test_abstain_is_minus_one():
    assert ABSTAIN == -1
    lf = KeywordLF("kw", ["free"], label=SPAM)
    assert votes(lf, ["nothing here"]) == [-1]


# --- KeywordLF -------------------------------------------------------------------------------------------------


def test_keyword_whole_word_by_default():
    lf = KeywordLF("kw", ["free"], label=SPAM)
    assert votes(lf, ["get it free now", "freedom", "carefree", "free", "(free)", "free!"]) == [1, -1, -1, 1, 1, 1]


def test_keyword_substring_matching():
    lf = KeywordLF("kw", ["free"], label=SPAM, whole_word=False)
    assert votes(lf, ["get it free now", "freedom", "carefree", "fre e"]) == [1, 1, 1, -1]


def test_keyword_case_insensitive_by_default():
    lf = KeywordLF("kw", ["Free"], label=SPAM)
    assert votes(lf, ["FREE", "free", "fReE"]) == [1, 1, 1]


def test_keyword_case_sensitive():
    lf = KeywordLF("kw", ["Free"], label=SPAM, case_sensitive=True)
    assert votes(lf, ["FREE", "free", "Free"]) == [-1, -1, 1]


def test_keyword_multi_word():
    lf = KeywordLF("kw", ["free entry"], label=SPAM)
    # only the phrase counts, not its words apart or in another order
    assert votes(lf, ["win a free entry today", "free and entry", "entry free", "FREE ENTRY"]) == [1, -1, -1, 1]


def test_keyword_any_of_several_keywords():
    lf = KeywordLF("kw", ["prize", "winner"], label=SPAM)
    assert votes(lf, ["a prize", "the winner", "a price", "winners"]) == [1, 1, -1, -1]


def test_keyword_regex_metacharacters_are_escaped():
    lf = KeywordLF("kw", ["c++", "£", "a.b"], label=SPAM)
    # "c++" is not the regex c+ (which would match "ccc"); "a.b" is a literal dot
    assert votes(lf, ["I like c++", "ccc", "costs £ 5", "pay in £.", "a.b", "axb", "c++x"]) == [1, -1, 1, 1, 1, -1, -1]


def test_keyword_substring_with_metacharacters():
    lf = KeywordLF("kw", ["£", "(x)"], label=SPAM, whole_word=False)
    assert votes(lf, ["costs £5", "f(x)=1", "x", "()"]) == [1, 1, -1, -1]


def test_keyword_votes_its_label():
    lf = KeywordLF("kw", ["hello"], label=3)
    assert lf.labels == (3,)
    assert lf.label == 3
    assert votes(lf, ["hello", "bye"]) == [3, -1]


def test_keyword_text_accessor_for_dicts():
    lf = KeywordLF("kw", ["free"], label=SPAM, text=lambda ex: ex["body"])
    assert votes(lf, [{"body": "free stuff", "title": "x"}, {"body": "x", "title": "free"}]) == [1, -1]


def test_keyword_non_string_example_error():
    lf = KeywordLF("kw", ["free"], label=SPAM)
    with pytest.raises(AmalError, match="string examples.*got dict"):
        lf.apply([{"body": "free"}])


@pytest.mark.parametrize("keywords", ["free", []])
def test_keyword_needs_a_list(keywords):
    with pytest.raises(AmalError, match="non-empty list of keywords"):
        KeywordLF("kw", keywords, label=SPAM)


def test_keyword_call_on_one_example():
    lf = KeywordLF("kw", ["free"], label=SPAM)
    assert lf("free") == SPAM
    assert lf("paid") == ABSTAIN


# --- RegexLF ---------------------------------------------------------------------------------------------------


def test_regex_lf_matches_with_search():
    lf = RegexLF("phone", r"\b0\d{9,10}\b", label=SPAM)
    assert votes(lf, ["call 07123456789 now", "call 0712 now", "07123456789", "x"]) == [1, -1, 1, -1]


def test_regex_lf_case_insensitive_by_default_and_flags():
    assert votes(RegexLF("r", "win", label=SPAM), ["WIN"]) == [1]
    assert votes(RegexLF("r", "win", label=SPAM, flags=0), ["WIN", "win"]) == [-1, 1]


def test_regex_lf_text_accessor():
    lf = RegexLF("r", r"^\d+$", label=HAM, text=lambda ex: ex[1])
    assert votes(lf, [("a", "123"), ("b", "12a")]) == [0, -1]


def test_regex_lf_bad_pattern_error():
    with pytest.raises(AmalError, match=r"RegexLF 'broken': bad pattern '\(unclosed'"):
        RegexLF("broken", "(unclosed", label=SPAM)


def test_regex_lf_non_string_error():
    with pytest.raises(AmalError, match="string examples.*got int"):
        RegexLF("r", "x", label=SPAM).apply([5])


# --- the decorator ---------------------------------------------------------------------------------------------


def test_decorator_name_defaults_to_function_name():
    @labeling_function()
    def short_message(text):
        return HAM if len(text) < 5 else ABSTAIN

    assert isinstance(short_message, LabelingFunction)
    assert short_message.name == "short_message"
    assert short_message.labels is None
    assert votes(short_message, ["hi", "a long message"]) == [0, -1]


def test_decorator_explicit_name():
    @labeling_function("my_name")
    def f(text):
        return ABSTAIN

    assert f.name == "my_name"


def test_decorator_label_and_labels():
    @labeling_function(label=SPAM)
    def a(text):
        return SPAM

    @labeling_function(labels=[HAM, SPAM])
    def b(text):
        return HAM

    assert a.labels == (1,)
    assert b.labels == (0, 1)


def test_decorator_label_and_labels_both_error():
    with pytest.raises(AmalError, match="label= or labels=, not both"):
        labeling_function(label=0, labels=[0, 1])


def test_decorator_empty_or_negative_labels_error():
    with pytest.raises(AmalError, match="non-empty class indices"):
        labeling_function(labels=[])(lambda x: 0)
    with pytest.raises(AmalError, match="non-empty class indices"):
        labeling_function(labels=[0, -1])(lambda x: 0)


def test_empty_name_error():
    with pytest.raises(AmalError, match="non-empty name"):
        LabelingFunction("", lambda x: 0)


def test_none_return_is_abstain():
    lf = labeling_function()(lambda x: None)
    assert votes(lf, ["a"]) == [-1]


def test_numpy_integer_return_accepted():
    lf = labeling_function(name="np_int")(lambda x: np.int64(2))
    assert votes(lf, ["a"]) == [2]


# --- vectorized LFs --------------------------------------------------------------------------------------------


def test_vectorized_array_output():
    @labeling_function(labels=(HAM, SPAM), vectorized=True)
    def many_digits(texts):
        return np.where([sum(c.isdigit() for c in t) > 3 for t in texts], SPAM, ABSTAIN)

    v, s = many_digits.apply(["12345", "12", "a1b2c3d4"])
    assert v.tolist() == [1, -1, 1]
    assert v.dtype == np.int64
    assert s.tolist() == [1.0, 0.0, 1.0]
    assert many_digits("99999") == SPAM


def test_vectorized_votes_and_scores_tuple():
    @labeling_function(vectorized=True, continuous=True)
    def vs(texts):
        return np.array([0, -1, 1]), np.array([0.25, 0.9, 0.5])

    v, s = vs.apply(["a", "b", "c"])
    assert v.tolist() == [0, -1, 1]
    assert s.tolist() == [0.25, 0.0, 0.5]  # the abstain row's score is zeroed


def test_vectorized_float_integral_votes_accepted():
    lf = labeling_function(vectorized=True)(lambda xs: np.array([1.0, -1.0]))
    v, _ = lf.apply(["a", "b"])
    assert v.tolist() == [1, -1]
    assert v.dtype == np.int64


def test_vectorized_wrong_shape_error():
    lf = labeling_function("vec", vectorized=True)(lambda xs: np.array([1, 0, 1]))
    with pytest.raises(AmalError, match=r"'vec' returned shape \(3,\) for 2 examples"):
        lf.apply(["a", "b"])


def test_vectorized_wrong_score_shape_error():
    lf = labeling_function("vec", vectorized=True)(lambda xs: (np.array([1, 0]), np.array([0.5])))
    with pytest.raises(AmalError, match=r"'vec' returned scores of shape \(1,\)"):
        lf.apply(["a", "b"])


def test_vectorized_non_integer_votes_error():
    lf = labeling_function("vec", vectorized=True)(lambda xs: np.array([0.5, 1.0]))
    with pytest.raises(AmalError, match="'vec' returned non-integer votes"):
        lf.apply(["a", "b"])


def test_vectorized_nan_votes_error():
    lf = labeling_function("vec", vectorized=True)(lambda xs: np.array([np.nan, 1.0]))
    with pytest.raises(AmalError, match="'vec' returned non-integer votes"):
        lf.apply(["a", "b"])


def test_vectorized_string_votes_error():
    lf = labeling_function("vec", vectorized=True)(lambda xs: np.array(["spam", "ham"]))
    with pytest.raises(AmalError, match="'vec' returned votes of dtype <U4; expected integers"):
        lf.apply(["a", "b"])


def test_vectorized_bool_mask_rejected():
    lf = labeling_function("mask", vectorized=True)(lambda xs: np.array([t.startswith("x") for t in xs]))
    with pytest.raises(AmalError, match="'mask'"):
        lf.apply(["xa", "b"])


# --- continuous LFs --------------------------------------------------------------------------------------------


def test_continuous_scores_land_in_S():
    @labeling_function(labels=(HAM, SPAM), continuous=True)
    def conf(text):
        if text == "a":
            return SPAM, 0.8
        if text == "b":
            return HAM, 0.3
        return ABSTAIN, 0.9  # an abstain row keeps no score

    out = apply_lfs([conf], ["a", "b", "c"])
    assert out.L[:, 0].tolist() == [1, 0, -1]
    assert out.S[:, 0].tolist() == [0.8, 0.3, 0.0]
    assert out.continuous.tolist() == [True]


def test_score_edges_zero_and_one_accepted():
    lf = labeling_function(continuous=True)(lambda x: (1, 0.0) if x == "a" else (1, 1.0))
    assert lf.apply(["a", "b"])[1].tolist() == [0.0, 1.0]


@pytest.mark.parametrize("bad", [1.5, -0.1, float("nan"), float("inf")])
def test_score_out_of_range_names_lf_and_row(bad):
    @labeling_function(continuous=True)
    def conf(text):
        return (SPAM, bad) if text == "bad" else (SPAM, 0.5)

    with pytest.raises(AmalError, match=r"'conf' gave score .* for example 2; scores must lie in \[0, 1\]"):
        conf.apply(["ok", "ok", "bad", "bad"])


def test_out_of_range_score_on_abstain_is_ignored():
    lf = labeling_function(continuous=True)(lambda x: (ABSTAIN, 7.0))
    assert lf.apply(["a"])[1].tolist() == [0.0]


def test_vectorized_score_out_of_range_error():
    lf = labeling_function("vs", vectorized=True, continuous=True)(
        lambda xs: (np.array([1, 1]), np.array([0.5, 2.0])))
    with pytest.raises(AmalError, match="'vs' gave score 2.0 for example 1"):
        lf.apply(["a", "b"])


def test_non_numeric_score_error():
    lf = labeling_function("conf", continuous=True)(lambda x: (SPAM, "high"))
    with pytest.raises(AmalError, match="'conf'.*example 0"):
        lf.apply(["a"])


# --- return-value errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["spam", True, False, 0.5, 1.0])
def test_bad_return_values(value):
    lf = labeling_function("bad_lf")(lambda x: value)
    with pytest.raises(AmalError, match=r"'bad_lf' returned .* for example 0; expected an int label or ABSTAIN"):
        lf.apply(["a"])


def test_three_tuple_error():
    lf = labeling_function("triple")(lambda x: SPAM if x == "a" else (1, 0.5, "why"))
    with pytest.raises(AmalError, match=r"'triple' returned \(1, 0.5, 'why'\) for example 1; expected a label or "
                                        r"\(label, score\)"):
        lf.apply(["a", "b"])


def test_one_tuple_error():
    lf = labeling_function("single")(lambda x: (1,))
    with pytest.raises(AmalError, match=r"'single' returned \(1,\) for example 0"):
        lf.apply(["a"])


@pytest.mark.parametrize("vote", [-2, -5])
def test_votes_below_minus_one_error(vote):
    lf = labeling_function("neg")(lambda x: vote)
    with pytest.raises(AmalError, match=f"'neg' voted {vote}; votes are -1"):
        lf.apply(["a"])


def test_vectorized_votes_below_minus_one_error():
    lf = labeling_function("neg", vectorized=True)(lambda xs: np.array([0, -3, -2]))
    with pytest.raises(AmalError, match="'neg' voted -3"):
        lf.apply(["a", "b", "c"])


def test_declared_labels_violation_error():
    @labeling_function(labels=(HAM,))
    def only_ham(text):
        return SPAM if text == "s" else (2 if text == "t" else HAM)

    with pytest.raises(AmalError, match=r"'only_ham' voted \[1, 2\] but declares labels \(0,\)"):
        only_ham.apply(["h", "s", "t"])


def test_declared_labels_abstain_is_fine():
    lf = labeling_function(label=HAM)(lambda x: ABSTAIN)
    assert votes(lf, ["a"]) == [-1]


# --- apply_lfs -------------------------------------------------------------------------------------------------


def _three_lfs():
    kw = KeywordLF("kw_free", ["free"], label=SPAM)
    rx = RegexLF("rx_digits", r"\d{3}", label=SPAM)

    @labeling_function(label=HAM, continuous=True)
    def short(text):
        return (HAM, 0.75) if len(text) < 8 else ABSTAIN

    return [kw, rx, short]


TEXTS = ["free 123 now", "hi", "call 555", "free", "a long quiet message"]


def test_apply_lfs_shapes_dtypes_and_values():
    out = apply_lfs(_three_lfs(), TEXTS)
    assert isinstance(out, LFOutput)
    assert out.L.shape == (5, 3) and out.S.shape == (5, 3)
    assert out.L.dtype == np.int64
    assert out.S.dtype == np.float64
    assert out.L.tolist() == [[1, 1, -1],
                              [-1, -1, 0],
                              [-1, 1, -1],
                              [1, -1, 0],
                              [-1, -1, -1]]
    assert out.S.tolist() == [[1, 1, 0],
                              [0, 0, 0.75],
                              [0, 1, 0],
                              [1, 0, 0.75],
                              [0, 0, 0]]
    assert len(out) == 5


def test_apply_lfs_names_continuous_labels():
    out = apply_lfs(_three_lfs(), TEXTS)
    assert out.names == ["kw_free", "rx_digits", "short"]
    assert out.continuous.dtype == bool
    assert out.continuous.tolist() == [False, False, True]
    assert out.labels == [(1,), (1,), (0,)]


def test_apply_lfs_undeclared_labels_are_none():
    lf = labeling_function()(lambda x: 0)
    assert apply_lfs([lf], ["a"]).labels == [None]


def test_apply_lfs_accepts_a_generator_and_an_array():
    lfs = _three_lfs()
    expected = apply_lfs(lfs, TEXTS).L
    assert (apply_lfs(lfs, (t for t in TEXTS)).L == expected).all()
    assert (apply_lfs(lfs, np.array(TEXTS, dtype=object)).L == expected).all()


def test_apply_lfs_duplicate_names_error():
    a = KeywordLF("same", ["x"], label=0)
    b = KeywordLF("same", ["y"], label=1)
    c = KeywordLF("other", ["z"], label=1)
    with pytest.raises(AmalError, match=r"names must be unique; repeated: \['same'\]"):
        apply_lfs([a, c, b], ["x"])


def test_apply_lfs_empty_list_error():
    with pytest.raises(AmalError, match="no labeling functions given"):
        apply_lfs([], ["x"])


def test_apply_lfs_plain_function_error():
    def plain(text):
        return 0

    with pytest.raises(AmalError, match=r"not labeling functions: \['function'\].*@labeling_function"):
        apply_lfs([KeywordLF("kw", ["x"], label=0), plain], ["x"])


def test_apply_lfs_non_lf_object_with_a_name_error():
    class Fake:
        name = "fake"

    with pytest.raises(AmalError, match=r"not labeling functions: \['Fake'\]"):
        apply_lfs([Fake()], ["x"])


def test_apply_lfs_single_string_error():
    with pytest.raises(AmalError, match="not one string"):
        apply_lfs(_three_lfs(), "free 123 now")


def test_apply_lfs_n_classes_check():
    lf = labeling_function("big")(lambda x: 2 if x == "b" else 0)
    assert apply_lfs([lf], ["a", "b"], n_classes=3).L[:, 0].tolist() == [0, 2]
    with pytest.raises(AmalError, match="'big' voted 2, outside the 2 classes"):
        apply_lfs([lf], ["a", "b"], n_classes=2)


def test_apply_lfs_empty_examples():
    out = apply_lfs(_three_lfs(), [])
    assert out.L.shape == (0, 3) and out.S.shape == (0, 3)


def test_lfoutput_rows():
    out = apply_lfs(_three_lfs(), TEXTS)
    sub = out.rows([3, 0])
    assert isinstance(sub, LFOutput)
    assert sub.L.tolist() == [[1, -1, 0], [1, 1, -1]]
    assert sub.S.tolist() == [[1, 0, 0.75], [1, 1, 0]]
    assert sub.names == out.names and sub.labels == out.labels
    assert sub.continuous.tolist() == [False, False, True]
    assert len(sub) == 2
    # the metadata is copied, not shared
    sub.names.append("x")
    sub.continuous[0] = True
    assert out.names == ["kw_free", "rx_digits", "short"]
    assert out.continuous.tolist() == [False, False, True]


def test_lfoutput_rows_numpy_index():
    out = apply_lfs(_three_lfs(), TEXTS)
    assert out.rows(np.array([4])).L.tolist() == [[-1, -1, -1]]


def test_progress_bar_does_not_change_results(capsys):
    lfs = _three_lfs()
    quiet = apply_lfs(lfs, TEXTS, progress=False)
    shown = apply_lfs(lfs, TEXTS, progress=True)
    assert (quiet.L == shown.L).all()
    assert (quiet.S == shown.S).all()
    assert quiet.names == shown.names
    assert "labeling functions" in capsys.readouterr().err
