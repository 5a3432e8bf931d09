"""Labeling functions (LFs): small heuristics that vote for a class or abstain.

Applying LFs to a list of examples gives the LF matrix ``L`` (n × m, ``-1`` = abstain, classes ``0..C-1``),
the Snorkel convention, so matrices move freely between the two libraries, and a matching score matrix ``S``
(continuous scores in [0, 1] for LFs that give one, ``0`` where an LF abstains).

Three ways to write an LF::

    spam_words = KeywordLF("spam_words", ["free", "winner", "prize"], label=SPAM)
    phone = RegexLF("phone_number", r"\\b0\\d{9,10}\\b", label=SPAM)

    @labeling_function(label=HAM)                  # any Python heuristic; return a label or ABSTAIN
    def short_message(text):
        return HAM if len(text) < 20 else ABSTAIN

    @labeling_function(labels=(HAM, SPAM), vectorized=True)   # sees every example at once
    def many_digits(texts):
        return np.where([sum(c.isdigit() for c in t) > 10 for t in texts], SPAM, ABSTAIN)

A function may return ``(label, score)`` instead of a label: the score is the LF's continuous confidence,
which CAGE can use (``continuous=True``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from amal.errors import AmalError

ABSTAIN = -1
PROGRESS_MIN_CELLS = 200_000  # show a progress bar from this many (example × LF) cells on


class LabelingFunction:
    """An LF: ``fn(example) -> label | (label, score) | ABSTAIN``.

    ``labels``: the classes the LF can vote for (CAGE uses them; ``None``: inferred from its votes).
    ``vectorized``: ``fn`` takes the whole sequence of examples and returns an array of votes (or a pair of
    arrays ``(votes, scores)``) — much faster for array or pandas-style heuristics. ``continuous``: the LF
    returns scores (otherwise every vote has score 1).
    """

    def __init__(self, name: str, fn: Callable[..., Any], *, labels: Iterable[int] | int | None = None,
                 vectorized: bool = False, continuous: bool = False) -> None:
        if not isinstance(name, str) or not name:
            raise AmalError(f"a labeling function needs a non-empty name, got {name!r}")
        self.name = name
        self.fn = fn
        self.labels = _labels(labels)
        self.vectorized = vectorized
        self.continuous = continuous

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, labels={self.labels})"

    def __call__(self, example: Any) -> Any:
        return self.fn([example])[0] if self.vectorized else self.fn(example)

    def apply(self, examples: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        """Votes ``[n]`` (int64, ``-1`` = abstain) and scores ``[n]`` (float64) over ``examples``."""
        n = len(examples)
        if self.vectorized:
            out = self.fn(examples)
            votes, scores = out if isinstance(out, tuple) and len(out) == 2 else (out, None)
            votes = np.asarray(votes)
            if votes.shape != (n,):
                raise AmalError(f"labeling function {self.name!r} returned shape {votes.shape} for {n} examples")
            scores = np.ones(n) if scores is None else np.asarray(scores, dtype=np.float64)
            if scores.shape != (n,):
                raise AmalError(f"labeling function {self.name!r} returned scores of shape {scores.shape}")
        else:
            votes = np.full(n, ABSTAIN, dtype=np.int64)
            scores = np.ones(n)
            for i, ex in enumerate(examples):
                out = self.fn(ex)
                if isinstance(out, tuple):
                    if len(out) != 2:
                        raise AmalError(f"labeling function {self.name!r} returned {out!r} for example {i}; "
                                        "expected a label or (label, score)")
                    out, score = out
                    try:
                        scores[i] = float(score)
                    except (TypeError, ValueError):
                        raise AmalError(f"labeling function {self.name!r} gave score {score!r} for example {i}; "
                                        "scores must be numbers in [0, 1]") from None
                votes[i] = _as_vote(out, self.name, i)
        votes = _check_votes(votes, self.name)
        scores = np.where(votes == ABSTAIN, 0.0, scores)
        bad = ~np.isfinite(scores) | (scores < 0) | (scores > 1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise AmalError(f"labeling function {self.name!r} gave score {scores[i]} for example {i}; "
                            "scores must lie in [0, 1]")
        if self.labels is not None:
            stray = sorted(set(np.unique(votes[votes != ABSTAIN]).tolist()) - set(self.labels))
            if stray:
                raise AmalError(f"labeling function {self.name!r} voted {stray} but declares labels {self.labels}")
        return votes, scores


def _labels(labels: Iterable[int] | int | None) -> tuple[int, ...] | None:
    if labels is None:
        return None
    out = (int(labels),) if isinstance(labels, int | np.integer) else tuple(int(c) for c in labels)
    if not out or any(c < 0 for c in out):
        raise AmalError(f"labels must be non-empty class indices >= 0, got {labels!r}")
    return out


def _as_vote(value: Any, name: str, i: int) -> int:
    if value is None:
        return ABSTAIN
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise AmalError(f"labeling function {name!r} returned {value!r} for example {i}; expected an int label "
                        f"or ABSTAIN (-1)")
    return int(value)


def _check_votes(votes: np.ndarray, name: str) -> np.ndarray:
    if votes.dtype.kind == "f":
        if not np.all(np.isfinite(votes)) or not np.all(votes == np.round(votes)):
            raise AmalError(f"labeling function {name!r} returned non-integer votes")
    elif votes.dtype.kind == "b":  # a mask is ambiguous: False would become a vote for class 0
        raise AmalError(f"labeling function {name!r} returned booleans; return a label where it fires and ABSTAIN "
                        "(-1) elsewhere, e.g. np.where(mask, SPAM, ABSTAIN)")
    elif votes.dtype.kind not in "iu":
        raise AmalError(f"labeling function {name!r} returned votes of dtype {votes.dtype}; expected integers")
    votes = votes.astype(np.int64)
    if (votes < ABSTAIN).any():
        raise AmalError(f"labeling function {name!r} voted {int(votes.min())}; votes are -1 (abstain) or a class")
    return votes


class PatternLF(LabelingFunction):
    """Votes ``label`` where a compiled regular expression finds a match: one C-level search per example."""

    def __init__(self, name: str, regex: re.Pattern[str], label: int,
                 text: Callable[[Any], str] | None = None) -> None:
        self.regex, self.label, self.text = regex, int(label), text
        super().__init__(name, self._vote, labels=label, vectorized=True)

    def _vote(self, examples: Sequence[Any]) -> np.ndarray:
        get = self.text or _as_text
        search = self.regex.search
        return np.fromiter((self.label if search(get(ex)) else ABSTAIN for ex in examples), np.int64,
                           count=len(examples))


class KeywordLF(PatternLF):
    """Votes ``label`` when any keyword occurs (whole words, case-insensitive by default), all keywords in one
    regular expression."""

    def __init__(self, name: str, keywords: Sequence[str], label: int, *, case_sensitive: bool = False,
                 whole_word: bool = True, text: Callable[[Any], str] | None = None) -> None:
        if isinstance(keywords, str) or not keywords:
            raise AmalError(f"KeywordLF {name!r} needs a non-empty list of keywords")
        self.keywords = list(keywords)
        body = "|".join(re.escape(k) for k in sorted(self.keywords, key=len, reverse=True))
        pattern = rf"(?<!\w)(?:{body})(?!\w)" if whole_word else f"(?:{body})"
        super().__init__(name, re.compile(pattern, 0 if case_sensitive else re.IGNORECASE), label, text)


class RegexLF(PatternLF):
    """Votes ``label`` when ``pattern`` matches (``re.search``; case-insensitive by default)."""

    def __init__(self, name: str, pattern: str, label: int, *, flags: int = re.IGNORECASE,
                 text: Callable[[Any], str] | None = None) -> None:
        try:
            regex = re.compile(pattern, flags)
        except re.error as e:
            raise AmalError(f"RegexLF {name!r}: bad pattern {pattern!r}: {e}") from None
        super().__init__(name, regex, label, text)


def _as_text(example: Any) -> str:
    if not isinstance(example, str):
        raise AmalError(f"keyword/regex LFs need string examples (or text=...), got {type(example).__name__}")
    return example


def labeling_function(name: str | None = None, *, label: int | None = None, labels: Iterable[int] | None = None,
                      vectorized: bool = False, continuous: bool = False
                      ) -> Callable[[Callable[..., Any]], LabelingFunction]:
    """Decorator: turn a function into a :class:`LabelingFunction` named after it (or ``name``)."""
    if label is not None and labels is not None:
        raise AmalError("give label= or labels=, not both")

    def wrap(fn: Callable[..., Any]) -> LabelingFunction:
        return LabelingFunction(name or fn.__name__, fn, labels=label if label is not None else labels,
                                vectorized=vectorized, continuous=continuous)

    return wrap


@dataclass
class LFOutput:
    """The result of :func:`apply_lfs`: votes ``L`` [n, m] (int64, -1 = abstain), scores ``S`` [n, m]
    (float64, 0 where abstaining), the LF names, which LFs give continuous scores, and the classes each
    LF declares (``None``: undeclared)."""

    L: np.ndarray
    S: np.ndarray
    names: list[str]
    continuous: np.ndarray
    labels: list[tuple[int, ...] | None]

    def __len__(self) -> int:
        return int(self.L.shape[0])

    def rows(self, idx: np.ndarray | Sequence[int]) -> LFOutput:
        idx = np.asarray(idx, dtype=np.int64)
        return LFOutput(self.L[idx], self.S[idx], list(self.names), self.continuous.copy(), list(self.labels))


def apply_lfs(lfs: Sequence[LabelingFunction], examples: Sequence[Any], *, n_classes: int | None = None,
              progress: bool | None = None) -> LFOutput:
    """Apply every LF to every example. ``n_classes`` checks that votes are classes; ``progress``: a bar
    over the LFs (default: on when n × m ≥ 200,000 cells)."""
    lfs = list(lfs)
    if not lfs:
        raise AmalError("no labeling functions given")
    bad = [type(lf).__name__ for lf in lfs if not isinstance(lf, LabelingFunction)]
    if bad:
        raise AmalError(f"not labeling functions: {bad} (wrap functions with @labeling_function)")
    names = [lf.name for lf in lfs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise AmalError(f"labeling function names must be unique; repeated: {dup}")
    if isinstance(examples, str):
        raise AmalError("examples must be a sequence of examples, not one string")
    examples = examples if isinstance(examples, Sequence | np.ndarray) else list(examples)
    n = len(examples)
    show = progress if progress is not None else n * len(lfs) >= PROGRESS_MIN_CELLS
    L = np.full((n, len(lfs)), ABSTAIN, dtype=np.int64)
    S = np.zeros((n, len(lfs)))
    for j, lf in enumerate(tqdm(lfs, desc="labeling functions", disable=not show, leave=False)):
        L[:, j], S[:, j] = lf.apply(examples)
        if n_classes is not None and (L[:, j] >= n_classes).any():
            raise AmalError(f"labeling function {lf.name!r} voted {int(L[:, j].max())}, outside the "
                            f"{n_classes} classes")
    return LFOutput(L, S, names, np.array([lf.continuous for lf in lfs]), [lf.labels for lf in lfs])
