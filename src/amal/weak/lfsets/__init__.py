"""Ready-made, hand-written labeling-function sets for the bundled text benchmarks.

An *LF set* is a plain function that returns a fresh list of :class:`~amal.weak.lf.LabelingFunction`
objects for one task: applied with :func:`~amal.weak.lf.apply_lfs`, it turns unlabeled texts into the LF
matrix ``L`` (and scores ``S``) that a label model aggregates. The sets here — ``"sms"`` (SMS Spam
Collection) and ``"youtube"`` (YouTube Spam Collection), both with ``HAM = 0`` and ``SPAM = 1`` — double
as worked examples of the LF API.

Writing your own: make a module with a ``lfs()`` function that builds your LFs — ``KeywordLF`` for word
lists, ``RegexLF`` for patterns, ``@labeling_function`` for anything else (``vectorized=True`` to see all
examples at once, ``continuous=True`` to return ``(label, score)``); see :mod:`amal.weak.lf`. Give every LF
a unique name, give *every* class some LFs (a set that only ever votes one class leaves a label model
nothing to contrast), and write the heuristics from domain knowledge, reading only a small development
sample — not by tuning them on the data you evaluate on.

    from amal.weak.lf import apply_lfs
    from amal.weak.lfsets import get_lf_set

    out = apply_lfs(get_lf_set("sms"), texts)
"""

from __future__ import annotations

from collections.abc import Callable

from amal.errors import AmalError
from amal.weak.lf import LabelingFunction
from amal.weak.lfsets import sms, youtube

LF_SETS: dict[str, Callable[[], list[LabelingFunction]]] = {"sms": sms.lfs, "youtube": youtube.lfs}


def get_lf_set(name: str) -> list[LabelingFunction]:
    """A fresh list of the LFs of the set called ``name`` (one of :data:`LF_SETS`)."""
    try:
        factory = LF_SETS[name]
    except (KeyError, TypeError):
        raise AmalError(f"unknown LF set {name!r}; known sets: {', '.join(sorted(LF_SETS))}") from None
    return factory()
