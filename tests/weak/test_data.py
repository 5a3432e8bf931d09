"""Rule-denoising data: seeded stratified splits, RuleData from arrays and from texts, and the synthetic rules."""

import numpy as np
import pytest
import torch

from amal.errors import AmalError
from amal.weak.data import SPLITS, RuleData, rule_data_from_arrays, rule_data_from_texts, split_indices
from amal.weak.features import TfidfFeatures
from amal.weak.lf import KeywordLF, apply_lfs
from amal.weak.synthetic import synthetic_rules

# --- split_indices --------------------------------------------------------------------------------------------

Y3 = np.array([0] * 120 + [1] * 60 + [2] * 20)  # 60 % / 30 % / 10 %
SIZES = {"labelled": 20, "val": 30, "test": 50}


def _split(y=Y3, seed=0, **kw):
    sizes = {f"n_{k}": v for k, v in SIZES.items()}
    sizes.update(kw)
    return split_indices(y, seed=seed, **sizes)


def test_split_keys_in_order():
    assert list(_split()) == list(SPLITS) == ["labelled", "unlabelled", "val", "test"]


def test_splits_are_disjoint_and_cover_everything():
    idx = _split()
    all_idx = np.concatenate([idx[s] for s in SPLITS])
    assert len(all_idx) == len(Y3)
    assert sorted(all_idx.tolist()) == list(range(len(Y3)))


def test_split_exact_sizes_and_sorted():
    idx = _split()
    assert {s: len(idx[s]) for s in SPLITS} == {"labelled": 20, "unlabelled": 100, "val": 30, "test": 50}
    for s in SPLITS:
        assert (np.diff(idx[s]) > 0).all()
        assert idx[s].dtype.kind == "i"


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_split_stratified_proportions(seed):
    idx = _split(seed=seed)
    p = np.bincount(Y3) / len(Y3)
    for s, k in SIZES.items():
        counts = np.bincount(Y3[idx[s]], minlength=3)
        assert (np.abs(counts - k * p) <= 1).all(), (s, counts, k * p)
    # with these round numbers the proportions are exact: 60/30/10 % of 50, 30 and 20
    assert np.bincount(Y3[idx["test"]]).tolist() == [30, 15, 5]
    assert np.bincount(Y3[idx["val"]]).tolist() == [18, 9, 3]
    assert np.bincount(Y3[idx["labelled"]]).tolist() == [12, 6, 2]


@pytest.mark.parametrize("seed", [0, 3])
def test_split_stratified_uneven_proportions(seed):
    y = np.array([0] * 70 + [1] * 33)
    rng = np.random.default_rng(5)
    y = y[rng.permutation(len(y))]
    idx = split_indices(y, n_labelled=7, n_val=9, n_test=10, seed=seed)
    p = np.bincount(y) / len(y)
    for s, k in (("labelled", 7), ("val", 9), ("test", 10)):
        counts = np.bincount(y[idx[s]], minlength=2)
        assert counts.sum() == k
        assert (np.abs(counts - k * p) <= 1).all(), (s, counts, k * p)


def test_split_small_class_gets_at_least_one():
    y = np.array([0] * 97 + [1] * 3)
    idx = split_indices(y, n_labelled=5, n_val=5, n_test=5, seed=0)
    for s in ("labelled", "val", "test"):
        assert (y[idx[s]] == 1).sum() == 1  # 3 % of 5 rounds to 0, but every class is represented


def test_split_unstratified_sizes():
    idx = _split(stratify=False)
    assert {s: len(idx[s]) for s in SPLITS} == {"labelled": 20, "unlabelled": 100, "val": 30, "test": 50}
    assert len(np.unique(np.concatenate([idx[s] for s in SPLITS]))) == len(Y3)


def test_split_same_seed_same_split():
    a, b = _split(seed=11), _split(seed=11)
    for s in SPLITS:
        assert (a[s] == b[s]).all()


def test_split_different_seed_different_split():
    a, b = _split(seed=0), _split(seed=1)
    assert any(not np.array_equal(a[s], b[s]) for s in SPLITS)
    assert not np.array_equal(a["test"], b["test"])


def test_split_no_unlabelled_left_error():
    with pytest.raises(AmalError, match="n_labelled \\+ n_val \\+ n_test = 200 leaves no unlabelled data out of "
                                        "200 examples"):
        split_indices(Y3, n_labelled=100, n_val=50, n_test=50, seed=0)
    # one example left over is enough
    idx = split_indices(Y3, n_labelled=99, n_val=50, n_test=50, seed=0)
    assert len(idx["unlabelled"]) == 1


@pytest.mark.parametrize("key", ["n_labelled", "n_val", "n_test"])
@pytest.mark.parametrize("value", [0, -3])
def test_split_size_below_one_error(key, value):
    sizes = {"n_labelled": 5, "n_val": 5, "n_test": 5, key: value}
    with pytest.raises(AmalError, match=f"{key} must be >= 1, got {value}"):
        split_indices(Y3, seed=0, **sizes)


# --- rule_data_from_arrays ------------------------------------------------------------------------------------

N = 60
IDS = np.arange(N)
Y2 = IDS % 2
# LF a votes the true class on every 3rd row, LF b the wrong class on every 5th: rows i with i % 3 and i % 5 both
# non-zero (32 of 60) are uncovered
L2 = np.stack([np.where(IDS % 3 == 0, Y2, -1), np.where(IDS % 5 == 0, 1 - Y2, -1)], axis=1)
UNCOVERED_ROWS = set(np.flatnonzero((IDS % 3 != 0) & (IDS % 5 != 0)).tolist())
X2 = torch.stack([torch.arange(N, dtype=torch.float32), torch.ones(N)], dim=1)  # column 0 = row id


def _arrays(**kw):
    args = {"n_labelled": 6, "n_val": 6, "n_test": 10, "seed": 0, "extra": {"row": IDS}}
    args.update(kw)
    return rule_data_from_arrays("toy", X2, Y2, L2, **args)


def _rows(data, split):
    return data.x[split][:, 0].long().numpy()


def test_uncovered_rows_count():
    assert len(UNCOVERED_ROWS) == 32


def test_arrays_drop_uncovered_unlabelled_rows():
    data = _arrays()
    assert isinstance(data, RuleData)
    u_rows = _rows(data, "unlabelled")
    # U lost exactly its uncovered rows, and says how many
    assert not (set(u_rows.tolist()) & UNCOVERED_ROWS)
    assert data.n_uncovered_dropped + len(u_rows) == N - 22
    all_kept = set(np.concatenate([_rows(data, s) for s in SPLITS]).tolist())
    dropped = set(range(N)) - all_kept
    assert dropped <= UNCOVERED_ROWS
    assert len(dropped) == data.n_uncovered_dropped > 0
    # L, V and T keep their rows, uncovered or not
    assert data.sizes() == {"labelled": 6, "unlabelled": N - 22 - data.n_uncovered_dropped, "val": 6, "test": 10}
    kept_uncovered = [r for s in ("labelled", "val", "test") for r in _rows(data, s) if r in UNCOVERED_ROWS]
    assert kept_uncovered  # 22 rows, more than half of all rows uncovered: some land in L/V/T
    assert len(dropped) + len(kept_uncovered) == len(UNCOVERED_ROWS)


def test_arrays_rows_line_up():
    data = _arrays()
    for s in SPLITS:
        rows = _rows(data, s)
        assert data.y[s].tolist() == Y2[rows].tolist()
        assert data.lf[s].L.tolist() == L2[rows].tolist()
        assert data.lf[s].S.tolist() == (L2[rows] >= 0).astype(float).tolist()
        assert data.extra["row"][s].tolist() == rows.tolist()
        assert data.x[s].dtype == torch.float32


def test_arrays_keep():
    data = _arrays(uncovered="keep")
    assert data.n_uncovered_dropped == 0
    assert data.sizes() == {"labelled": 6, "unlabelled": N - 22, "val": 6, "test": 10}
    assert set(_rows(data, "unlabelled").tolist()) & UNCOVERED_ROWS


def test_arrays_error():
    n_uncovered_u = _arrays().n_uncovered_dropped  # the same seed gives the same split
    with pytest.raises(AmalError, match=rf"unlabelled LF matrix: {n_uncovered_u} row\(s\) where every LF abstains "
                                        r"\(first: row \d+\)"):
        _arrays(uncovered="error")


def test_arrays_error_passes_when_all_covered():
    L = np.where(L2 < 0, 0, L2)
    data = rule_data_from_arrays("toy", X2, Y2, L, n_labelled=6, n_val=6, n_test=10, uncovered="error")
    assert data.sizes()["unlabelled"] == N - 22


def test_arrays_bad_uncovered_value():
    with pytest.raises(AmalError, match=r"uncovered must be one of \['drop', 'keep', 'error'\], got 'ignore'"):
        _arrays(uncovered="ignore")


def test_arrays_all_uncovered_unlabelled_error():
    L = np.full((N, 2), -1)
    with pytest.raises(AmalError, match="no LF fires on any unlabelled example"):
        rule_data_from_arrays("toy", X2, Y2, L, n_labelled=6, n_val=6, n_test=10)


def test_arrays_defaults_and_metadata():
    data = _arrays()
    assert data.name == "toy"
    assert data.class_names == ["0", "1"]
    assert data.n_classes == 2
    assert data.lf_names == ["lf0", "lf1"]
    assert data.input_shape == (2,)
    assert data.texts is None
    assert data.n_duplicates == 0
    assert data.lf["labelled"].continuous.tolist() == [False, False]


def test_arrays_names_and_scores():
    S = np.where(L2 >= 0, 0.5, 0.0)
    data = _arrays(class_names=["neg", "pos"], lf_names=["a", "b"], S=S)
    assert data.class_names == ["neg", "pos"]
    assert data.lf_names == ["a", "b"]
    for s in SPLITS:
        assert data.lf[s].S.tolist() == S[_rows(data, s)].tolist()


def test_arrays_bad_inputs():
    with pytest.raises(AmalError, match=r"LF matrix has 59 rows, expected 60"):
        rule_data_from_arrays("toy", X2, Y2, L2[:59])
    with pytest.raises(AmalError, match=r"LF matrix\[\d+, \d+\] = 1: values must be -1 or 0..0"):
        rule_data_from_arrays("toy", X2, np.zeros(N, dtype=int), L2, class_names=["only"])
    with pytest.raises(AmalError, match=r"LF scores have shape"):
        rule_data_from_arrays("toy", X2, Y2, L2, S=np.zeros((N, 3)))


# --- rule_data_from_texts -------------------------------------------------------------------------------------

HAM, SPAM = 0, 1
# every text carries a unique tag word ("tagNN"), so the fitted vocabulary shows which texts TF-IDF saw
SPAM_TEXTS = [
    "win a free prize now tag01", "free entry to the draw tag02", "claim your prize today tag03",
    "you are our prize winner tag04", "free ringtones for you tag05", "a free cruise awaits tag06",
    "urgent prize claim tag07", "txt win for a free phone tag08", "your prize is waiting tag09",
    "free minutes every month tag10", "cash prize call us tag11", "get free credit tag12",
    "special offer just for you tag13", "click the link tag14", "limited deal ends soon tag15",
    "bonus points unlocked tag16",
]
HAM_TEXTS = [
    "see you at home tag21", "lunch at noon tag22", "are you home yet tag23", "what is for lunch tag24",
    "heading home now tag25", "lunch was great tag26", "call me when home tag27", "skip lunch today tag28",
    "home by six tag29", "lunch with mum tag30", "left my keys at home tag31", "pizza for lunch tag32",
    "ok see you soon tag33", "running late sorry tag34", "happy birthday dear tag35", "meeting moved tag36",
    "thanks for the book tag37", "good night tag38", "on the bus tag39", "movie tonight tag40",
]
DUPLICATES = [SPAM_TEXTS[0], HAM_TEXTS[0], HAM_TEXTS[1], SPAM_TEXTS[1]]
TEXTS = SPAM_TEXTS + HAM_TEXTS + DUPLICATES
LABELS = np.array([SPAM] * 16 + [HAM] * 20 + [SPAM, HAM, HAM, SPAM])
LABEL_OF = {t: int(y) for t, y in zip(TEXTS, LABELS)}


def _lfs():
    return [KeywordLF("kw_spam", ["free", "prize"], label=SPAM), KeywordLF("kw_ham", ["home", "lunch"], label=HAM)]


def _texts(**kw):
    args = {"features": TfidfFeatures(min_df=1), "n_labelled": 4, "n_val": 4, "n_test": 8, "seed": 0}
    args.update(kw)
    return rule_data_from_texts("tiny", TEXTS, LABELS, _lfs(), ["ham", "spam"], **args)


def test_corpus_sizes():
    assert len(TEXTS) == 40 and len(set(TEXTS)) == 36


def test_texts_duplicates_dropped_and_counted():
    data = _texts()
    assert data.n_duplicates == 4
    all_texts = [t for s in SPLITS for t in data.texts[s]]
    assert len(all_texts) == len(set(all_texts))  # no text in two places
    assert len(all_texts) + data.n_uncovered_dropped == 36


def test_texts_without_dedupe():
    data = _texts(dedupe=False, uncovered="keep")
    assert data.n_duplicates == 0
    assert sum(data.sizes().values()) == 40


def test_texts_split_sizes_and_uncovered_drop():
    data = _texts()
    assert data.sizes()["labelled"] == 4 and data.sizes()["val"] == 4 and data.sizes()["test"] == 8
    in_lvt = {t for s in ("labelled", "val", "test") for t in data.texts[s]}
    lf_hits = apply_lfs(_lfs(), sorted(set(TEXTS))).L
    uncovered = {t for t, row in zip(sorted(set(TEXTS)), lf_hits) if (row == -1).all()}
    assert len(uncovered) == 12  # tag13..tag16 and tag33..tag40 hold no keyword
    assert data.n_uncovered_dropped == len(uncovered - in_lvt)
    assert not set(data.texts["unlabelled"]) & uncovered


def test_texts_line_up_with_labels_votes_and_features():
    features = TfidfFeatures(min_df=1)
    data = _texts(features=features)
    assert data.class_names == ["ham", "spam"]
    assert data.lf_names == ["kw_spam", "kw_ham"]
    for s in SPLITS:
        texts = data.texts[s]
        assert data.y[s].tolist() == [LABEL_OF[t] for t in texts]
        assert data.lf[s].L.tolist() == apply_lfs(_lfs(), texts).L.tolist()
        assert data.x[s].shape == (len(texts), features.dim)
        assert data.x[s].dtype == torch.float32
        assert torch.allclose(data.x[s], features.transform(texts))


def test_tfidf_vocabulary_fitted_on_labelled_and_unlabelled_only():
    features = TfidfFeatures(min_df=1)
    data = _texts(features=features)
    vocab = features.vectorizer.vocabulary_

    def tags(split):
        return [w for t in data.texts[split] for w in t.split() if w.startswith("tag")]

    assert tags("test") and tags("val")
    for tag in tags("test") + tags("val"):
        assert tag not in vocab, tag
    for tag in tags("labelled") + tags("unlabelled"):
        assert tag in vocab, tag
    # the test texts featurise without their unseen tag words
    assert features.dim == len(vocab)


def test_texts_same_seed_same_data_different_seed_different_test():
    a, b, c = _texts(seed=3), _texts(seed=3), _texts(seed=4)
    assert a.texts == b.texts
    assert a.texts["test"] != c.texts["test"]


def test_texts_bad_labels_error():
    with pytest.raises(AmalError, match=r"text labels have shape \(39,\), expected \(40,\)"):
        rule_data_from_texts("tiny", TEXTS, LABELS[:39], _lfs(), ["ham", "spam"], features=TfidfFeatures())


# --- synthetic_rules ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def syn():
    return synthetic_rules(n=3000, n_classes=3, dim=6, n_lfs=5, seed=2)


def test_synthetic_shapes(syn):
    assert syn.x.shape == (3000, 6) and syn.x.dtype == torch.float32
    assert syn.y.shape == (3000,) and syn.y.dtype == np.int64
    assert syn.L.shape == (3000, 5) and syn.L.dtype == np.int64
    assert syn.region.shape == (3000,) and syn.region.dtype == bool
    assert syn.accuracy.shape == (5,) and syn.coverage.shape == (5,)
    assert syn.names == ["lf0", "lf1", "lf2", "lf3", "lf4"]
    assert set(np.unique(syn.L).tolist()) <= {-1, 0, 1, 2}
    assert set(np.unique(syn.y).tolist()) == {0, 1, 2}
    assert ((syn.accuracy >= 0.75) & (syn.accuracy <= 0.9)).all()
    assert ((syn.coverage >= 0.3) & (syn.coverage <= 0.6)).all()


def test_synthetic_region_is_x0_above_threshold(syn):
    assert (syn.region == (syn.x[:, 0].numpy() > 0.9)).all()
    assert 0.14 < syn.region.mean() < 0.23  # P(N(0,1) > 0.9) ≈ 0.18


def test_synthetic_wrong_on_every_vote_in_region(syn):
    for j in range(syn.L.shape[1]):
        fired = (syn.L[:, j] != -1) & syn.region
        assert fired.sum() > 50
        assert (syn.L[fired, j] != syn.y[fired]).all()


def test_synthetic_accuracy_outside_region(syn):
    for j in range(syn.L.shape[1]):
        fired = (syn.L[:, j] != -1) & ~syn.region
        acc = (syn.L[fired, j] == syn.y[fired]).mean()
        assert abs(acc - syn.accuracy[j]) < 0.05, (j, acc, syn.accuracy[j])


def test_synthetic_coverage(syn):
    cov = (syn.L != -1).mean(axis=0)
    np.testing.assert_allclose(cov, syn.coverage, atol=0.04)


def test_synthetic_seeded():
    a, b = synthetic_rules(n=200, seed=5), synthetic_rules(n=200, seed=5)
    c = synthetic_rules(n=200, seed=6)
    assert (a.L == b.L).all() and torch.equal(a.x, b.x)
    assert not (a.L == c.L).all()


def test_synthetic_feeds_rule_data_from_arrays():
    s = synthetic_rules(n=400, seed=1)
    data = rule_data_from_arrays("syn", s.x, s.y, s.L, lf_names=s.names, n_labelled=20, n_val=40, n_test=80,
                                 extra={"region": s.region})
    for split in SPLITS:
        assert data.extra["region"][split].shape == data.y[split].shape


def test_rule_lf_table_coverage_on_u_and_accuracy_per_split():
    from amal.weak.analysis import lf_accuracies, rule_lf_table

    syn = synthetic_rules(600, n_lfs=3, seed=4)
    data = rule_data_from_arrays("s", syn.x, syn.y, syn.L, n_labelled=40, n_val=60, n_test=60, seed=0)
    table = rule_lf_table(data, {"L": "labelled", "V": "val"})
    assert table.n == len(data.y["unlabelled"]) and table.n_gold == 0  # coverage etc. on U, no gold there
    assert table.extra_accuracy["V"] == lf_accuracies(data.lf["val"].L, data.y["val"])
    md = table.to_markdown()
    assert "accuracy (L)" in md and "accuracy (V)" in md and "accuracy (gold)" not in md
