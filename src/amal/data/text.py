"""Real spam / ham text data for weak supervision: the UCI SMS Spam and YouTube Spam collections.

The loaders read the published files as they are (checked against their published SHA-256 unless told not to),
so every experiment on them starts from the same bytes. The files are never part of the project: pass a folder,
set ``AMAL_DATA_DIR``, or download them from the UCI repository into a folder of your choice.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import tempfile
import urllib.request
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from amal.errors import AmalError

HAM, SPAM = 0, 1
CLASS_NAMES = ["ham", "spam"]
TEXT_DATASETS = ("sms", "youtube")
SMS_URL = "https://archive.ics.uci.edu/static/public/228/sms+spam+collection.zip"
YOUTUBE_URL = "https://archive.ics.uci.edu/static/public/380/youtube+spam+collection.zip"
ENV_VAR = "AMAL_DATA_DIR"

SMS_FILE = "SMSSpamCollection"
SMS_FOLDER, YOUTUBE_FOLDER = "sms_spam", "youtube_spam"
# video name (the group of each comment) -> its file, in the published order
YOUTUBE_FILES = {
    "Psy": "Youtube01-Psy.csv",
    "KatyPerry": "Youtube02-KatyPerry.csv",
    "LMFAO": "Youtube03-LMFAO.csv",
    "Eminem": "Youtube04-Eminem.csv",
    "Shakira": "Youtube05-Shakira.csv",
}
YOUTUBE_COLUMNS = ("COMMENT_ID", "AUTHOR", "DATE", "CONTENT", "CLASS")

SHA256: dict[str, str] = {
    "SMSSpamCollection": "7d039a24a6083ed9ef0f806ebad56bbb976e3aeb8de05669173bfdc4996c239d",
    "Youtube01-Psy.csv": "19797e6c77690e3c8809cfd2853ae7341390636367ba66cf5d4f4083f0b88535",
    "Youtube02-KatyPerry.csv": "902c614f8ef24f987d6f614d7e6111aa5160b89a0646b68e007bd6044a3d123b",
    "Youtube03-LMFAO.csv": "702ef589860a1831956f527760a3d9737ef8a07ab36c7de35b92b8898b8c3928",
    "Youtube04-Eminem.csv": "92f54eb6b22fdf3b7ae85e1f500e5aa7442edd025e504b988a97078756187e76",
    "Youtube05-Shakira.csv": "1d8ab47b71e8037c51183b2fc62f0591a48a4b54f3a4f5d9d3043113b274e98e",
}

_MAX_MEMBER_BYTES = 64 << 20  # the real files are < 1 MB; refuse to inflate anything much larger


@dataclass
class TextDataset:
    """Texts with binary labels (0 = ham, 1 = spam) and, for YouTube, the video each comment belongs to."""

    name: str
    texts: list[str]
    labels: np.ndarray
    class_names: list[str]
    groups: list[str] | None = None

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if self.labels.shape != (len(self.texts),):
            raise AmalError(f"{self.name}: {len(self.texts)} texts but labels of shape {self.labels.shape}")
        if self.groups is not None and len(self.groups) != len(self.texts):
            raise AmalError(f"{self.name}: {len(self.texts)} texts but {len(self.groups)} groups")

    def __len__(self) -> int:
        return len(self.texts)


# ----------------------------------------------------------------------------------------------- checksums


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verify_sha256(path: str | os.PathLike[str], expected: str) -> None:
    """Raise naming the file unless its SHA-256 is ``expected``, so a modified copy is never taken for the real one."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise AmalError(f"missing data file: {path}")
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    actual, expected = h.hexdigest(), expected.strip().lower()
    if actual != expected:
        raise AmalError(
            f"{path} is not the published file: sha256 expected {expected}, got {actual} "
            f"(pass verify=False to load a modified copy)"
        )


def _read_text(path: str) -> str:
    """The file as text (UTF-8, a leading BOM dropped); a decoding error names the file and line."""
    with open(path, "rb") as f:
        raw = f.read()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise AmalError(f"{path}, line {line}: not valid UTF-8 ({e.reason} at byte {e.start})") from None


# ----------------------------------------------------------------------------------------------- SMS


def _find_sms(path: str) -> str | None:
    for candidate in (path, os.path.join(path, SMS_FILE), os.path.join(path, SMS_FOLDER, SMS_FILE)):
        if os.path.isfile(candidate):
            return candidate
    return None


def load_sms_spam(path: str | os.PathLike[str], *, verify: bool = True) -> TextDataset:
    """The 5,574 SMS messages; ``path`` is the ``SMSSpamCollection`` file, a folder holding it, or a folder
    holding ``sms_spam/SMSSpamCollection``."""
    path = os.path.expanduser(os.fspath(path))
    if not os.path.exists(path):
        raise AmalError(f"SMS spam data not found: {path} does not exist")
    file = _find_sms(path)
    if file is None:
        raise AmalError(
            f"SMS spam data not found: no {SMS_FILE} or {SMS_FOLDER}/{SMS_FILE} in {path} (download: {SMS_URL})"
        )
    if verify:
        verify_sha256(file, SHA256[SMS_FILE])
    labels = {name: i for i, name in enumerate(CLASS_NAMES)}
    texts: list[str] = []
    ys: list[int] = []
    lines = _read_text(file).split("\n")
    for number, line in enumerate(lines, start=1):
        line = line.removesuffix("\r")
        if not line:
            continue  # a blank line (e.g. at the end of the file) holds no message
        label, tab, text = line.partition("\t")
        if not tab:
            raise AmalError(f"{file}, line {number}: expected 'label<TAB>text', found no tab")
        if label not in labels:
            raise AmalError(f"{file}, line {number}: unknown label {label!r}, expected 'ham' or 'spam'")
        texts.append(text)
        ys.append(labels[label])
    if not texts:
        raise AmalError(f"{file} holds no messages")
    return TextDataset("sms", texts, np.asarray(ys, dtype=np.int64), list(CLASS_NAMES))


# ----------------------------------------------------------------------------------------------- YouTube


def _select_videos(videos: Sequence[str] | None) -> list[str]:
    """Canonical video names in the published order; matching ignores case so ``"psy"`` works."""
    if videos is None:
        return list(YOUTUBE_FILES)
    if isinstance(videos, str):
        videos = [videos]
    known = {v.lower(): v for v in YOUTUBE_FILES}
    unknown = [v for v in videos if v.lower() not in known]
    if unknown:
        raise AmalError(f"unknown YouTube video(s) {unknown}; known: {list(YOUTUBE_FILES)}")
    if not videos:
        raise AmalError(f"videos is empty; choose from {list(YOUTUBE_FILES)}")
    wanted = {known[v.lower()] for v in videos}
    return [v for v in YOUTUBE_FILES if v in wanted]


def _find_youtube(path: str, files: list[str]) -> tuple[str, list[str]]:
    """The folder to read (``path`` or ``path/youtube_spam``) and which of ``files`` it lacks."""
    candidates = [path, os.path.join(path, YOUTUBE_FOLDER)]
    found = []
    for folder in candidates:
        missing = [f for f in files if not os.path.isfile(os.path.join(folder, f))]
        if not missing:
            return folder, []
        found.append((len(missing), folder, missing))
    _, folder, missing = min(found, key=lambda t: t[0])  # report the folder that came closest
    return folder, missing


def _read_youtube_csv(path: str) -> tuple[list[str], list[int]]:
    reader = csv.reader(io.StringIO(_read_text(path), newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise AmalError(f"{path} is empty; expected the header {','.join(YOUTUBE_COLUMNS)}")
        missing = [c for c in YOUTUBE_COLUMNS if c not in header]
        if missing:
            raise AmalError(f"{path}, line 1: header lacks column(s) {missing}; expected {list(YOUTUBE_COLUMNS)}, "
                            f"got {header}")
        i_text, i_class = header.index("CONTENT"), header.index("CLASS")
        texts: list[str] = []
        ys: list[int] = []
        start = reader.line_num + 1
        for row in reader:
            if row:
                if len(row) != len(header):
                    raise AmalError(f"{path}, line {start}: expected {len(header)} fields, got {len(row)}")
                value = row[i_class].strip()
                if value not in ("0", "1"):
                    raise AmalError(f"{path}, line {start}: CLASS must be 0 or 1, got {row[i_class]!r}")
                texts.append(row[i_text])
                ys.append(int(value))
            start = reader.line_num + 1
    except csv.Error as e:
        raise AmalError(f"{path}, line {reader.line_num}: malformed CSV ({e})") from None
    return texts, ys


def load_youtube_spam(
    path: str | os.PathLike[str], *, verify: bool = True, videos: Sequence[str] | None = None
) -> TextDataset:
    """The 1,956 YouTube comments (or those of ``videos``, e.g. ``["Psy"]``), with the video of each as its group,
    so splits can hold out whole videos. ``path`` holds the five CSVs or a ``youtube_spam/`` folder with them."""
    path = os.path.expanduser(os.fspath(path))
    names = _select_videos(videos)
    if not os.path.isdir(path):
        raise AmalError(f"YouTube spam data not found: folder {path} does not exist")
    files = [YOUTUBE_FILES[v] for v in names]
    folder, missing = _find_youtube(path, files)
    if missing:
        raise AmalError(f"YouTube spam data incomplete: {folder} lacks {missing} (download: {YOUTUBE_URL})")
    if verify:
        for f in files:
            verify_sha256(os.path.join(folder, f), SHA256[f])
    texts: list[str] = []
    ys: list[int] = []
    groups: list[str] = []
    for video, f in zip(names, files):
        t, y = _read_youtube_csv(os.path.join(folder, f))
        texts += t
        ys += y
        groups += [video] * len(t)
    return TextDataset("youtube", texts, np.asarray(ys, dtype=np.int64), list(CLASS_NAMES), groups)


# ----------------------------------------------------------------------------------------------- downloads


def _member_parts(name: str, source: str) -> list[str]:
    """The path components of a zip member; an absolute path or ``..`` could write outside the target folder."""
    clean = name.replace("\\", "/")
    parts = [p for p in clean.split("/") if p not in ("", ".")]
    if clean.startswith("/") or (len(clean) > 1 and clean[1] == ":") or ".." in parts:
        raise AmalError(f"{source} has an unsafe member path {name!r}; not extracting")
    return parts


def _read_members(archive_path: str, url: str, wanted: list[str]) -> dict[str, bytes]:
    """The bytes of each ``wanted`` file, wherever it sits in the archive, each checked against SHA256; every
    member's path is checked first, so an unsafe archive is refused outright."""
    try:
        with zipfile.ZipFile(archive_path) as archive:
            members: dict[str, zipfile.ZipInfo] = {}
            for info in archive.infolist():
                parts = _member_parts(info.filename, url)
                if info.is_dir() or not parts or "__MACOSX" in parts or parts[-1] not in wanted:
                    continue  # folders, macOS resource forks, readmes
                if parts[-1] in members:
                    raise AmalError(f"{url} holds more than one {parts[-1]}; not extracting")
                members[parts[-1]] = info
            missing = [w for w in wanted if w not in members]
            if missing:
                raise AmalError(f"{url} lacks {missing}")
            out: dict[str, bytes] = {}
            for name in wanted:
                if members[name].file_size > _MAX_MEMBER_BYTES:
                    raise AmalError(f"{url}: {name} is {members[name].file_size} bytes, far more than the real file")
                out[name] = archive.read(members[name])
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError) as e:
        raise AmalError(f"{url} is not a readable zip archive: {e}") from None
    for name, data in out.items():
        got = _sha256_bytes(data)
        if got != SHA256[name]:
            raise AmalError(f"{name} from {url} is not the published file: sha256 expected {SHA256[name]}, got {got}")
    return out


def _download_zip(url: str, root: str, folder: str, wanted: list[str]) -> str:
    """Fetch the archive into a temporary file in ``root``, take ``wanted`` out of it and write them to
    ``root/folder`` only once all are checked, so a failure leaves nothing half-done. Returns that folder."""
    root = os.path.expanduser(root)
    dest = os.path.join(root, folder)
    os.makedirs(root, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".download-", suffix=".zip", dir=root)
    try:
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    out.write(chunk)
        except (OSError, ValueError) as e:  # URLError is an OSError; a malformed URL is a ValueError
            raise AmalError(
                f"cannot download {url}: {type(e).__name__}: {e}; download it manually and unzip "
                f"{', '.join(wanted)} into {dest}"
            ) from None
        files = _read_members(tmp, url, wanted)
    finally:
        os.remove(tmp)
    os.makedirs(dest, exist_ok=True)
    for name, data in files.items():
        part = os.path.join(dest, name + ".part")
        with open(part, "wb") as f:
            f.write(data)
        os.replace(part, os.path.join(dest, name))
    return dest


def download_sms_spam(root: str | os.PathLike[str], url: str = SMS_URL) -> str:
    """Download the UCI archive and keep only ``root/sms_spam/SMSSpamCollection`` (checked); returns that folder."""
    return _download_zip(url, os.fspath(root), SMS_FOLDER, [SMS_FILE])


def download_youtube_spam(root: str | os.PathLike[str], url: str = YOUTUBE_URL) -> str:
    """Download the UCI archive and keep only the five CSVs in ``root/youtube_spam/`` (checked); returns that
    folder."""
    return _download_zip(url, os.fspath(root), YOUTUBE_FOLDER, list(YOUTUBE_FILES.values()))


# ----------------------------------------------------------------------------------------------- by name


def load_text_dataset(
    name: str, path: str | os.PathLike[str] | None = None, *, verify: bool = True, download: bool = False
) -> TextDataset:
    """``"sms"`` or ``"youtube"`` from ``path`` (default: ``$AMAL_DATA_DIR``); ``download=True`` fetches the files
    into ``path`` first when they are not there."""
    if name not in TEXT_DATASETS:
        raise AmalError(f"unknown text data set {name!r}; choose from {list(TEXT_DATASETS)}")
    url = SMS_URL if name == "sms" else YOUTUBE_URL
    if path is None:
        path = os.environ.get(ENV_VAR) or None
    if path is None:
        raise AmalError(
            f"no data folder for {name!r}: pass a path (a folder holding {SMS_FOLDER}/ and {YOUTUBE_FOLDER}/), set "
            f"{ENV_VAR}, or pass download=True with a path to download into (source: {url})"
        )
    path = os.path.expanduser(os.fspath(path))
    if name == "sms":
        if download and (not os.path.exists(path) or _find_sms(path) is None):
            download_sms_spam(path, url)
        return load_sms_spam(path, verify=verify)
    if download and (not os.path.isdir(path) or _find_youtube(path, list(YOUTUBE_FILES.values()))[1]):
        download_youtube_spam(path, url)
    return load_youtube_spam(path, verify=verify)
