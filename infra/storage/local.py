"""Local-folder backend: the same port as S3, for running without any cloud.

Writes go to a temp file and are renamed into place, so no reader ever sees a partial file.
Conditional writes: put-if-absent is `os.link` (atomic, fails if the name exists); put-if-match
holds an flock on the root while it compares and renames.
"""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from handlers import layout
from handlers.errors import ObjectNotFound, PreconditionFailed
from handlers.storage import Listing, ObjectInfo
from infra.storage.keys import clean_key

TMP_DIR = ".dropreel-tmp"
_UMASK = os.umask(0)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK
"""Outputs get the mode any new file gets here (0644 under the usual umask), not mkstemp's
0600, so whoever can read the inputs can read the MP4 beside them."""
PAGE_SIZE = 1000


def _name(entry: os.DirEntry) -> str:
    return entry.name


def _pages(objects: Iterator[ObjectInfo]) -> Iterator[list[ObjectInfo]]:
    page: list[ObjectInfo] = []
    for obj in objects:
        page.append(obj)
        if len(page) == PAGE_SIZE:
            yield page
            page = []
    if page:
        yield page


def _listing(pages: Iterator[list[ObjectInfo]]) -> Listing:
    objects: list[ObjectInfo] = []
    count = 0
    started = time.monotonic()  # `pages` is lazy: the walk starts after this
    for page in pages:
        objects.extend(page)
        count += 1
    objects.sort(key=lambda o: o.key)
    return Listing(objects, datetime.now(UTC), max(count, 1), started)


def _etag(stat: os.stat_result) -> str:
    raw = f"{stat.st_ino}:{stat.st_size}:{stat.st_mtime_ns}".encode()
    return hashlib.md5(raw, usedforsecurity=False).hexdigest()


class LocalStorage:
    """A folder as a Storage; keys are POSIX paths relative to `root`."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.tmp = self.root / TMP_DIR
        self.tmp.mkdir(exist_ok=True)
        self.url = self.root.as_uri() + "/"

    def _path(self, key: str) -> Path:
        return self.root / clean_key(key)

    def check_key(self, key: str) -> None:
        clean_key(key)

    def describe(self, key: str) -> str:
        return str(self.root / key)

    def iter_pages(self, prefix: str = "") -> Iterator[Listing]:
        """Pages of the objects whose keys start with `prefix`, a folder's whole subtree
        together (depth first), walking only the folder the prefix names."""
        for page in _pages(self._walk(prefix)):
            yield Listing(page, datetime.now(UTC), 1)

    def _walk(self, prefix: str) -> Iterator[ObjectInfo]:
        base, _, start = prefix.rpartition("/")
        if base and not layout.is_safe_key(base):
            return  # no key below an unsafe folder name is ever listed
        top = self.root / base if base else self.root
        for dirpath, dirnames, filenames in os.walk(top):
            rel_dir = os.path.relpath(dirpath, self.root).replace(os.sep, "/")
            if dirpath == str(top):
                dirnames[:] = [d for d in dirnames if d.startswith(start) and d != TMP_DIR]
            dirnames.sort()
            folder = "" if rel_dir == "." else rel_dir + "/"
            for name in sorted(filenames):
                if (folder + name).startswith(prefix):
                    yield from self._info(folder + name, os.path.join(dirpath, name))

    def _files_in(self, folder: str) -> Iterator[ObjectInfo]:
        """The files directly in `folder`, not its subfolders."""
        try:
            entries = sorted(os.scandir(self.root / folder if folder else self.root), key=_name)
        except (FileNotFoundError, NotADirectoryError):
            return
        for entry in entries:
            if entry.is_file(follow_symlinks=False):
                yield from self._info(folder + entry.name, entry.path)

    @staticmethod
    def _info(key: str, path: str) -> Iterator[ObjectInfo]:
        try:
            st = os.stat(path)
        except FileNotFoundError:  # deleted while listed
            return
        yield ObjectInfo(key, st.st_size, _etag(st), datetime.fromtimestamp(st.st_mtime, UTC))

    def list(self, prefix: str = "") -> Listing:
        return _listing(_pages(self._walk(prefix)))

    def list_folder(self, folder: str) -> Listing:
        if folder:
            clean_key(folder.rstrip("/"))
        meta = _pages(self._walk(layout.meta_root(folder)))
        return _listing(itertools.chain(_pages(self._files_in(folder)), meta))

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError) as err:
            raise ObjectNotFound(f"{self.describe(key)} does not exist") from err

    def download(self, key: str, dest: Path) -> None:
        try:
            shutil.copyfile(self._path(key), dest)
        except FileNotFoundError as err:
            raise ObjectNotFound(f"{self.describe(key)} does not exist") from err

    def _stage(self, data: bytes | Path) -> Path:
        fd, name = tempfile.mkstemp(dir=self.tmp, prefix=uuid.uuid4().hex[:8])
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as out:
            if isinstance(data, Path):
                with data.open("rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
            else:
                out.write(data)
        return Path(name)

    def put(self, key: str, data: bytes | Path, content_type: str | None = None) -> str:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        staged = self._stage(data)
        os.replace(staged, target)
        return _etag(target.stat())

    def put_if_absent(self, key: str, data: bytes, content_type: str | None = None) -> str:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        staged = self._stage(data)
        try:
            os.link(staged, target)
        except FileExistsError as err:
            raise PreconditionFailed(f"{self.describe(key)} already exists") from err
        finally:
            staged.unlink(missing_ok=True)
        return _etag(target.stat())

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.tmp / ".lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def put_if_match(
        self, key: str, data: bytes, etag: str, content_type: str | None = None
    ) -> str:
        target = self._path(key)
        staged = self._stage(data)
        with self._locked():
            try:
                current = _etag(target.stat())
            except FileNotFoundError as err:
                staged.unlink(missing_ok=True)
                raise PreconditionFailed(f"{self.describe(key)} no longer exists") from err
            if current != etag:
                staged.unlink(missing_ok=True)
                raise PreconditionFailed(f"{self.describe(key)} changed since it was read")
            os.replace(staged, target)
            return _etag(target.stat())

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def presigned_url(self, key: str, expires_seconds: int) -> str | None:
        return self._path(key).as_uri()
