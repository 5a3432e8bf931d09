"""The hand-written LF sets: they build, vote sensibly on clear examples, and cover the real data."""

import csv
import time
from pathlib import Path

import numpy as np
import pytest

from amal.errors import AmalError
from amal.weak.lf import KeywordLF, LabelingFunction, RegexLF, apply_lfs
from amal.weak.lfsets import LF_SETS, get_lf_set

HAM, SPAM = 0, 1
DATA = Path(__file__).resolve().parents[3] / "shared" / "data"

# Clear-cut, hand-written examples (not taken from the data sets).
EXAMPLES = {
    "sms": {
        SPAM: ["URGENT! You have been selected to receive a £900 prize. To claim call 09061234567 now. "
               "T&C apply, 150ppm, 18+",
               "FREE entry to our weekly draw! Txt WIN to 81234 now. Reply STOP to opt out. www.example-win.co.uk"],
        HAM: ["Ok lar... see you at home later :)",
              "Sorry, I'm stuck in a meeting, will call you after dinner"],
    },
    "youtube": {
        SPAM: ["Hey guys please check out my channel and subscribe, I will subscribe back!",
               "Earn money with free gift cards here http://example-cards.net/ref=123"],
        HAM: ["This song never gets old lol",
              "2 billion views and I still love this video"],
    },
}


def test_registry_names_the_two_sets():
    assert set(LF_SETS) == {"sms", "youtube"}


def test_unknown_set_names_the_known_ones():
    with pytest.raises(AmalError, match="sms.*youtube"):
        get_lf_set("email")


@pytest.mark.parametrize("name", sorted(LF_SETS))
def test_set_builds_fresh_lfs_with_unique_names(name):
    lfs = get_lf_set(name)
    assert 15 <= len(lfs) <= 25
    assert all(isinstance(lf, LabelingFunction) for lf in lfs)
    names = [lf.name for lf in lfs]
    assert len(set(names)) == len(names)
    again = get_lf_set(name)
    assert [lf.name for lf in again] == names
    assert not {id(lf) for lf in lfs} & {id(lf) for lf in again}


@pytest.mark.parametrize("name", sorted(LF_SETS))
def test_set_mixes_kinds_and_votes_for_both_classes(name):
    lfs = get_lf_set(name)
    declared = {c for lf in lfs for c in (lf.labels or ())}
    assert declared == {HAM, SPAM}
    for label in (HAM, SPAM):  # each class has several LFs of its own
        assert sum(lf.labels == (label,) for lf in lfs) >= 4
    custom = [lf for lf in lfs if not isinstance(lf, KeywordLF | RegexLF)]
    assert sum(isinstance(lf, KeywordLF) for lf in lfs) >= 3
    assert sum(isinstance(lf, RegexLF) for lf in lfs) >= 3
    assert any(lf.vectorized for lf in custom)
    assert 2 <= sum(lf.continuous for lf in lfs) <= 4


@pytest.mark.parametrize("name", sorted(LF_SETS))
def test_clear_examples_get_the_right_votes(name):
    examples = EXAMPLES[name]
    texts = examples[SPAM] + examples[HAM]
    out = apply_lfs(get_lf_set(name), texts, n_classes=2)
    assert out.L.shape == (len(texts), len(out.names))
    for i, text in enumerate(texts):
        label = SPAM if i < len(examples[SPAM]) else HAM
        votes = out.L[i][out.L[i] != -1]
        right, wrong = int((votes == label).sum()), int((votes == 1 - label).sum())
        assert right >= 1 and right > wrong, (text, dict(zip(out.names, out.L[i].tolist())))


@pytest.mark.parametrize("name", sorted(LF_SETS))
def test_continuous_scores_lie_in_unit_interval(name):
    examples = EXAMPLES[name]
    texts = examples[SPAM] + examples[HAM] + ["", "!!!", "1234567890 " * 5, "A" * 300]
    out = apply_lfs(get_lf_set(name), texts)
    S, L = out.S[:, out.continuous], out.L[:, out.continuous]
    assert S.shape[1] >= 2
    assert np.all((S >= 0) & (S <= 1))
    assert np.all(S[L == -1] == 0)
    assert np.any((S > 0) & (S < 1))  # genuine confidences, not just 0/1
    assert np.all(out.S[:, ~out.continuous][out.L[:, ~out.continuous] != -1] == 1)


def _sms_texts() -> list[str]:
    path = DATA / "sms_spam" / "SMSSpamCollection"
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n").split("\t", 1)[1] for line in f if "\t" in line]


def _youtube_texts() -> list[str]:
    texts = []
    for path in sorted((DATA / "youtube_spam").glob("Youtube0*.csv")):
        with open(path, encoding="utf-8", newline="") as f:
            texts += [row["CONTENT"] for row in csv.DictReader(f)]
    return texts


REAL = {"sms": (_sms_texts, 5574), "youtube": (_youtube_texts, 1956)}


@pytest.mark.skipif(not DATA.is_dir(), reason=f"real data not found at {DATA} (the shared data folder is absent)")
@pytest.mark.parametrize("name", sorted(LF_SETS))
def test_set_on_real_data_is_fast_covers_and_every_lf_fires(name):
    load, n = REAL[name]
    texts = load()
    assert len(texts) == n
    lfs = get_lf_set(name)
    start = time.perf_counter()
    out = apply_lfs(lfs, texts, n_classes=2, progress=False)
    assert time.perf_counter() - start < 10
    coverage = float((out.L != -1).any(axis=1).mean())
    assert coverage >= 0.5
    silent = [lf for lf, fires in zip(out.names, (out.L != -1).any(axis=0)) if not fires]
    assert not silent
    assert {HAM, SPAM} <= set(np.unique(out.L).tolist())
