"""Download the real datasets from Zenodo, with resume, verification and extraction.

The file list comes from the Zenodo record itself (its JSON API gives each file's
name, size and MD5). :data:`PINNED_SHA256` adds SHA-256 checksums for files
someone has verified; fill it in as they become known. Every file is

1. downloaded to ``<name>.part`` (an interrupted download resumes from where it
   stopped with an HTTP ``Range`` request),
2. verified: size, then MD5 and SHA-256 wherever known; a mismatch deletes the
   ``.part`` file and raises,
3. renamed to its final name (atomic), so a file with its final name is always
   complete and checked; archives are then unpacked into the data root through a
   staging folder and marked done.

Nothing is ever read from a ``.part`` file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

ZENODO_RECORD = "5235536"
ZENODO_API = "https://zenodo.org/api/records/"

# file name on the record -> SHA-256 hex digest, for files verified by hand.
PINNED_SHA256: dict[str, str] = {}

# which record files belong to which dataset (matched case-insensitively in the file name)
DATASET_KEYWORDS = {"microscopy": ("micro",), "drone": ("drone",)}
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


@dataclass(frozen=True)
class RemoteFile:
    """One downloadable file: its name, URL and what it must be (where known)."""

    name: str
    url: str
    size: int | None = None
    md5: str | None = None
    sha256: str | None = None

    @property
    def is_archive(self) -> bool:
        return self.name.lower().endswith(ARCHIVE_SUFFIXES)


def record_files(record: str = ZENODO_RECORD, api: str = ZENODO_API, timeout: float = 60) -> list[RemoteFile]:
    """The files of a Zenodo record, from its JSON API (names, URLs, sizes, MD5)."""
    url = f"{api.rstrip('/')}/{record}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            data = json.loads(resp.read().decode("utf-8"))
    except (urllib.error.URLError, OSError) as err:
        raise ConnectionError(
            f"cannot reach the Zenodo record {url} ({err}); download the files by hand from "
            f"https://zenodo.org/record/{record} and unpack them under the data root"
        ) from None
    entries = data.get("files")
    if isinstance(entries, dict):  # some API versions nest the list under "entries"
        entries = entries.get("entries", [])
    if not entries:
        raise ValueError(f"{url}: the record lists no files")
    files = []
    for e in entries:
        name = e.get("key") or e.get("filename")
        links = e.get("links", {})
        link = links.get("content") or links.get("self") or links.get("download")
        if not link:
            link = f"{api.rstrip('/')}/{record}/files/{name}/content"
        md5 = None
        checksum = e.get("checksum") or ""
        if checksum.startswith("md5:"):
            md5 = checksum[4:]
        files.append(RemoteFile(name, link, e.get("size") or e.get("filesize"), md5, PINNED_SHA256.get(name)))
    return files


def select_files(files: list[RemoteFile], dataset: str) -> list[RemoteFile]:
    """The files of ``dataset`` ("microscopy" or "drone") among a record's files."""
    if dataset not in DATASET_KEYWORDS:
        raise ValueError(f"dataset: expected one of {', '.join(map(repr, DATASET_KEYWORDS))}; got {dataset!r}")
    keys = DATASET_KEYWORDS[dataset]
    chosen = [f for f in files if any(k in f.name.lower() for k in keys)]
    if not chosen:
        names = ", ".join(f.name for f in files)
        raise ValueError(f"no file of the record looks like the {dataset} data (looked for {keys}); the record has: {names}")
    return chosen


def verify_file(path, size: int | None = None, md5: str | None = None, sha256: str | None = None) -> None:
    """Raise ``ValueError`` unless ``path`` has the given size and checksums (``None`` = unknown)."""
    path = Path(path)
    got = path.stat().st_size
    if size is not None and got != size:
        raise ValueError(f"{path.name}: size mismatch: expected {size} bytes, got {got}")
    wanted = {k: v.lower() for k, v in (("md5", md5), ("sha256", sha256)) if v}
    if not wanted:
        return
    hashes = {k: hashlib.new(k) for k in wanted}
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            for h in hashes.values():
                h.update(block)
    for k, h in hashes.items():
        if h.hexdigest() != wanted[k]:
            raise ValueError(f"{path.name}: {k} checksum mismatch: expected {wanted[k]}, got {h.hexdigest()}")


def download_file(
    url: str,
    dest,
    size: int | None = None,
    md5: str | None = None,
    sha256: str | None = None,
    progress: bool = True,
    chunk_size: int = 1 << 20,
    timeout: float = 60,
) -> Path:
    """Download ``url`` to ``dest`` through ``dest.part``, resuming and verifying.

    An existing ``dest`` is verified and kept if good, deleted and fetched again
    if not. Returns ``dest``.

    Raises:
        ConnectionError: the server cannot be reached or answers with an error.
        ValueError: the data does not match ``size``/``md5``/``sha256`` (the
            ``.part`` file is deleted; ``dest`` is not created).
    """
    from tqdm.auto import tqdm

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        try:
            verify_file(dest, size, md5, sha256)
            return dest
        except ValueError:
            dest.unlink()
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset > size:
        part.unlink()
        offset = 0
    if size is None or offset < size:
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        try:
            resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
        except urllib.error.HTTPError as err:
            if not (err.code == 416 and offset):  # 416 on resume: nothing left to fetch
                raise ConnectionError(f"{url}: HTTP {err.code} {err.reason}") from None
            resp = None
        except (urllib.error.URLError, OSError) as err:
            raise ConnectionError(f"{url}: cannot download ({err})") from None
        if resp is not None:
            with resp:
                if offset and resp.status != 206:  # the server ignored the range: start again
                    offset = 0
                length = resp.headers.get("Content-Length")
                total = size if size is not None else (offset + int(length) if length else None)
                with open(part, "ab" if offset else "wb") as f, tqdm(
                    total=total, initial=offset, unit="B", unit_scale=True, desc=dest.name, disable=not progress
                ) as bar:
                    while block := resp.read(chunk_size):
                        f.write(block)
                        bar.update(len(block))
    try:
        verify_file(part, size, md5, sha256)
    except ValueError:
        part.unlink()
        raise
    os.replace(part, dest)
    return dest


def extract_archive(archive, dest, dataset: str | None = None) -> Path:
    """Unpack ``archive`` into ``dest`` through a staging folder, refusing members that
    would land outside it. If the archive does not itself hold a ``dataset`` folder
    (at its top or one level down), its content goes into ``dest/dataset``. A marker
    file records the extraction, so it happens once. Returns the folder unpacked into."""
    archive, dest = Path(archive), Path(dest)
    marker = dest / f".extracted-{archive.name}"
    target = dest
    if marker.exists():
        return Path(marker.read_text().strip() or dest)
    dest.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".extract-", suffix=".part", dir=dest))
    try:
        name = archive.name.lower()
        if name.endswith(".zip"):
            with zipfile.ZipFile(archive) as z:
                for member in z.namelist():
                    _check_member(member, archive)
                z.extractall(staging)
        else:
            with tarfile.open(archive) as t:
                for member in t.getmembers():
                    _check_member(member.name, archive)
                    if member.issym() or member.islnk() or member.isdev():
                        raise ValueError(f"{archive}: refusing link or device member {member.name!r}")
                t.extractall(staging)
        if dataset and not _holds_folder(staging, dataset):
            target = dest / dataset
        _merge(staging, target)
    except (zipfile.BadZipFile, tarfile.TarError) as err:
        raise ValueError(f"{archive}: not a readable archive ({err})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    marker.write_text(str(target))
    return target


def _check_member(name: str, archive: Path) -> None:
    p = Path(name)
    if p.is_absolute() or ".." in p.parts:
        raise ValueError(f"{archive}: refusing member {name!r} that would be written outside the data folder")


def _holds_folder(staging: Path, name: str) -> bool:
    if (staging / name).is_dir():
        return True
    return any((sub / name).is_dir() for sub in staging.iterdir() if sub.is_dir())


def _merge(src: Path, dst: Path) -> None:
    """Move the tree ``src`` into ``dst``, file by file (existing files are replaced)."""
    dst.mkdir(parents=True, exist_ok=True)
    for item in src.iterdir():
        target = dst / item.name
        if item.is_dir():
            _merge(item, target)
        else:
            os.replace(item, target)


def download_dataset(
    dataset: str,
    root,
    record: str = ZENODO_RECORD,
    api: str = ZENODO_API,
    files: list[RemoteFile] | None = None,
    progress: bool = True,
) -> Path:
    """Download and unpack one real dataset ("microscopy" or "drone") under ``root``.

    Downloads go to ``root/downloads/``; archives are unpacked into ``root``.
    ``files`` overrides the record's file list (e.g. a mirror). Returns ``root``.
    """
    root = Path(root)
    if files is None:
        files = select_files(record_files(record, api), dataset)
    for f in files:
        path = download_file(f.url, root / "downloads" / f.name, f.size, f.md5, f.sha256, progress=progress)
        if f.is_archive:
            extract_archive(path, root, dataset)
    return root
