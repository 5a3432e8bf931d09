"""SMS / YouTube spam loaders: the real files (when present), checksums, parse errors and zip downloads from
file:// URLs built in tmp_path (no network)."""

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from amal.data import text
from amal.data.text import (
    CLASS_NAMES,
    HAM,
    SHA256,
    SPAM,
    YOUTUBE_FILES,
    TextDataset,
    download_sms_spam,
    download_youtube_spam,
    load_sms_spam,
    load_text_dataset,
    load_youtube_spam,
    verify_sha256,
)
from amal.errors import AmalError

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
real_data = pytest.mark.skipif(
    not (DATA / "sms_spam" / "SMSSpamCollection").is_file() or not (DATA / "youtube_spam").is_dir(),
    reason=f"real text data not available at {DATA}",
)
PER_VIDEO = {"Psy": (350, 175), "KatyPerry": (350, 175), "LMFAO": (438, 236), "Eminem": (448, 245),
             "Shakira": (370, 174)}
HEADER = "COMMENT_ID,AUTHOR,DATE,CONTENT,CLASS\n"


def _write_youtube(folder: Path, rows: dict[str, str] | None = None) -> Path:
    """Five tiny CSVs; ``rows`` overrides the body of some files."""
    folder.mkdir(parents=True, exist_ok=True)
    for video, fname in YOUTUBE_FILES.items():
        body = (rows or {}).get(video, f'id1,a,2014,"hi, {video}\nline two",0\nid2,b,2014,"buy ""now""",1\n')
        (folder / fname).write_text(HEADER + body, encoding="utf-8")
    return folder


def _zip(path: Path, members: dict[str, bytes]) -> str:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path.as_uri()


# ----------------------------------------------------------------------------------------------- real data


@real_data
def test_sms_real_counts_and_both_path_forms():
    for p in (DATA, DATA / "sms_spam", DATA / "sms_spam" / "SMSSpamCollection", str(DATA)):
        ds = load_sms_spam(p)
        assert isinstance(ds, TextDataset) and ds.name == "sms" and ds.groups is None
        assert len(ds) == len(ds.texts) == 5574
        assert ds.labels.dtype == np.int64
        assert int((ds.labels == HAM).sum()) == 4827 and int((ds.labels == SPAM).sum()) == 747
        assert ds.class_names == CLASS_NAMES == ["ham", "spam"]
    assert ds.texts[1] == "Ok lar... Joking wif u oni..."
    assert not any(t.endswith(("\n", "\r")) for t in ds.texts)


@real_data
def test_youtube_real_counts_groups_and_subset():
    for p in (DATA, DATA / "youtube_spam"):
        ds = load_youtube_spam(p)
        assert ds.name == "youtube" and len(ds) == 1956 and int(ds.labels.sum()) == 1005
        assert ds.labels.dtype == np.int64 and set(np.unique(ds.labels)) == {0, 1}
        groups = np.asarray(ds.groups)
        for video, (n, n_spam) in PER_VIDEO.items():
            mask = groups == video
            assert (int(mask.sum()), int(ds.labels[mask].sum())) == (n, n_spam), video
    assert any("\n" in t for t in ds.texts)  # a quoted multi-line comment survives
    sub = load_youtube_spam(DATA, videos=["Shakira", "psy"])
    assert len(sub) == 720 and sub.groups[0] == "Psy" and sub.groups[-1] == "Shakira"  # published order
    with pytest.raises(AmalError, match=r"unknown YouTube video.*'Adele'.*known.*Psy"):
        load_youtube_spam(DATA, videos=["Adele"])


@real_data
def test_load_text_dataset_with_path_and_env(monkeypatch):
    assert len(load_text_dataset("sms", DATA)) == 5574
    monkeypatch.setenv("AMAL_DATA_DIR", str(DATA))
    assert len(load_text_dataset("youtube")) == 1956
    assert len(load_text_dataset("sms")) == 5574
    with pytest.raises(AmalError, match="unknown text data set 'imdb'"):
        load_text_dataset("imdb")


@real_data
def test_checksum_mismatch_names_file_and_verify_false_loads(tmp_path):
    sms = tmp_path / "SMSSpamCollection"
    sms.write_bytes((DATA / "sms_spam" / "SMSSpamCollection").read_bytes() + b"ham\tone more\n")
    with pytest.raises(AmalError, match=r"SMSSpamCollection.*expected 7d039a.*got [0-9a-f]{64}.*verify=False"):
        load_sms_spam(tmp_path)
    ds = load_sms_spam(tmp_path, verify=False)
    assert len(ds) == 5575 and ds.texts[-1] == "one more" and ds.labels[-1] == HAM

    yt = tmp_path / "yt"
    shutil.copytree(DATA / "youtube_spam", yt)
    with open(yt / "Youtube03-LMFAO.csv", "a", encoding="utf-8") as f:
        f.write("x,y,z,extra spam,1\n")
    with pytest.raises(AmalError, match="Youtube03-LMFAO.csv"):
        load_youtube_spam(yt)
    assert len(load_youtube_spam(yt, verify=False)) == 1957
    assert len(load_youtube_spam(yt, videos=["Psy"])) == 350  # only the chosen files are checked


def test_verify_sha256(tmp_path):
    f = tmp_path / "a.txt"
    f.write_bytes(b"abc")
    verify_sha256(f, "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD")  # case-insensitive
    with pytest.raises(AmalError, match=r"a\.txt.*expected 00+, got ba7816bf"):
        verify_sha256(f, "0" * 64)
    with pytest.raises(AmalError, match="missing data file"):
        verify_sha256(tmp_path / "nope", "0" * 64)
    assert set(SHA256) == {"SMSSpamCollection", *YOUTUBE_FILES.values()}


# ----------------------------------------------------------------------------------------------- parsing


def test_sms_parsing_and_errors(tmp_path):
    f = tmp_path / "sms_spam" / "SMSSpamCollection"
    f.parent.mkdir()
    f.write_bytes("\ufeffham\thello\tworld \r\nspam\t\n\nham\t  spaced  \n".encode())
    ds = load_sms_spam(tmp_path, verify=False)
    assert ds.texts == ["hello\tworld ", "", "  spaced  "] and ds.labels.tolist() == [HAM, SPAM, HAM]

    f.write_text("ham\tok\nspam no tab\n")
    with pytest.raises(AmalError, match=r"SMSSpamCollection, line 2: .*no tab"):
        load_sms_spam(f, verify=False)
    f.write_text("ham\tok\nham\tok\nSPAM\tx\n")
    with pytest.raises(AmalError, match=r"line 3: unknown label 'SPAM'"):
        load_sms_spam(f, verify=False)
    f.write_bytes(b"ham\tok\nham\t\xff\n")
    with pytest.raises(AmalError, match=r"line 2: not valid UTF-8"):
        load_sms_spam(f, verify=False)


def test_sms_missing(tmp_path):
    with pytest.raises(AmalError, match=r"does not exist"):
        load_sms_spam(tmp_path / "absent")
    with pytest.raises(AmalError, match=r"no SMSSpamCollection or sms_spam/SMSSpamCollection in .*archive\.ics"):
        load_sms_spam(tmp_path)


def test_youtube_parsing_and_errors(tmp_path):
    folder = _write_youtube(tmp_path / "youtube_spam")
    ds = load_youtube_spam(tmp_path, verify=False)
    assert len(ds) == 10 and ds.labels.tolist() == [0, 1] * 5
    assert ds.texts[:2] == ["hi, Psy\nline two", 'buy "now"'] and ds.groups[:3] == ["Psy", "Psy", "KatyPerry"]

    # the bad row starts on line 4: the first row spans lines 2-3
    _write_youtube(folder, {"LMFAO": 'a,b,c,"x\ny",0\nc,d,e,f,2\n'})
    with pytest.raises(AmalError, match=r"Youtube03-LMFAO\.csv, line 4: CLASS must be 0 or 1, got '2'"):
        load_youtube_spam(folder, verify=False)
    _write_youtube(folder, {"LMFAO": "a,b,c,1\n"})
    with pytest.raises(AmalError, match=r"Youtube03-LMFAO\.csv, line 2: expected 5 fields, got 4"):
        load_youtube_spam(folder, verify=False)
    (folder / "Youtube04-Eminem.csv").write_text("COMMENT_ID,AUTHOR,DATE,CLASS\na,b,c,1\n")
    with pytest.raises(AmalError, match=r"Youtube04-Eminem\.csv, line 1: header lacks column\(s\) \['CONTENT'\]"):
        load_youtube_spam(folder, verify=False, videos=["Eminem"])

    (folder / "Youtube05-Shakira.csv").unlink()
    with pytest.raises(AmalError, match=r"youtube_spam lacks \['Youtube05-Shakira\.csv'\]"):
        load_youtube_spam(tmp_path, verify=False)
    assert len(load_youtube_spam(tmp_path, verify=False, videos=["Psy"])) == 2
    with pytest.raises(AmalError, match="does not exist"):
        load_youtube_spam(tmp_path / "absent")


def test_load_text_dataset_without_path_says_how(monkeypatch):
    monkeypatch.delenv("AMAL_DATA_DIR", raising=False)
    with pytest.raises(AmalError, match=r"pass a path.*AMAL_DATA_DIR.*download=True.*https://archive\.ics\.uci"):
        load_text_dataset("youtube")
    with pytest.raises(AmalError, match="228/sms"):
        load_text_dataset("sms", download=True)


# ----------------------------------------------------------------------------------------------- downloads


@real_data
def test_download_from_file_url(tmp_path, monkeypatch):
    sms_url = _zip(tmp_path / "sms.zip", {
        "readme": b"about", "SMSSpamCollection": (DATA / "sms_spam" / "SMSSpamCollection").read_bytes()})
    yt = {f"YouTube-Spam-Collection-v1/{f}": (DATA / "youtube_spam" / f).read_bytes() for f in YOUTUBE_FILES.values()}
    yt["__MACOSX/YouTube-Spam-Collection-v1/._Youtube01-Psy.csv"] = b"junk"
    yt_url = _zip(tmp_path / "yt.zip", yt)

    root = tmp_path / "data"
    assert download_sms_spam(root, url=sms_url) == str(root / "sms_spam")
    assert sorted(p.name for p in root.rglob("*")) == ["SMSSpamCollection", "sms_spam"]  # archive removed
    assert download_youtube_spam(str(root), url=yt_url) == str(root / "youtube_spam")
    assert len(load_text_dataset("youtube", root)) == 1956

    # load_text_dataset(download=True) downloads only when the files are absent
    monkeypatch.setattr(text, "SMS_URL", sms_url)
    monkeypatch.setattr(text, "YOUTUBE_URL", yt_url)
    fresh = tmp_path / "fresh"
    assert len(load_text_dataset("sms", fresh, download=True)) == 5574
    assert len(load_text_dataset("youtube", fresh, download=True)) == 1956
    (tmp_path / "sms.zip").unlink()
    assert len(load_text_dataset("sms", fresh, download=True)) == 5574  # present: no download attempted


def test_download_rejects_unsafe_wrong_and_unreachable(tmp_path):
    root = tmp_path / "data"
    evil = _zip(tmp_path / "evil.zip", {"../evil": b"x", "SMSSpamCollection": b"ham\thi\n"})
    with pytest.raises(AmalError, match=r"unsafe member path '\.\./evil'"):
        download_sms_spam(root, url=evil)
    assert not (tmp_path / "evil").exists() and not (root / "sms_spam").exists()
    absolute = _zip(tmp_path / "abs.zip", {"/etc/SMSSpamCollection": b"ham\thi\n"})
    with pytest.raises(AmalError, match="unsafe member path"):
        download_sms_spam(root, url=absolute)

    wrong = _zip(tmp_path / "wrong.zip", {"SMSSpamCollection": b"ham\thi\n"})
    with pytest.raises(AmalError, match=r"SMSSpamCollection from .*wrong\.zip is not the published file"):
        download_sms_spam(root, url=wrong)
    lacking = _zip(tmp_path / "lacking.zip", {"Youtube01-Psy.csv": b"x"})
    with pytest.raises(AmalError, match=r"lacks \['Youtube02-KatyPerry\.csv'"):
        download_youtube_spam(root, url=lacking)
    (tmp_path / "not.zip").write_bytes(b"plain text")
    with pytest.raises(AmalError, match="not a readable zip"):
        download_sms_spam(root, url=(tmp_path / "not.zip").as_uri())

    with pytest.raises(AmalError, match=r"cannot download file:///nonexistent\.zip.*download it manually.*sms_spam"):
        download_sms_spam(root, url="file:///nonexistent.zip")
    assert list(root.iterdir()) == []  # no temporary archive, no half-filled folder left behind
