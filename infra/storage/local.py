"""Local-folder backend: the same port as S3, for running without any cloud.

Writes go to a temp file and are renamed into place, so no reader ever sees a partial file.
Conditional writes: put-if-absent is `os.link` (atomic, fails if the name exists); put-if-match
holds an flock on the root while it compares and renames.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

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

    def iter_pages(self, prefix: str = "") -> Iterator[list[ObjectInfo]]:
        page: list[ObjectInfo] = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            if dirpath == str(self.root):
                dirnames[:] = [d for d in dirnames if d != TMP_DIR]
            dirnames.sort()
            rel_dir = os.path.relpath(dirpath, self.root)
            for name in sorted(filenames):
                key = name if rel_dir == "." else f"{rel_dir}/{name}".replace(os.sep, "/")
                if not key.startswith(prefix):
                    continue
                try:
                    st = os.stat(os.path.join(dirpath, name))
                except FileNotFoundError:
                    continue
                page.append(
                    ObjectInfo(key, st.st_size, _etag(st), datetime.fromtimestamp(st.st_mtime, UTC))
                )
                if len(page) == PAGE_SIZE:
                    yield page
                    page = []
        if page:
            yield page

    def list(self, prefix: str = "") -> Listing:
        objects: list[ObjectInfo] = []
        pages = 0
        for page in self.iter_pages(prefix):
            objects.extend(page)
            pages += 1
        objects.sort(key=lambda o: o.key)
        return Listing(objects, datetime.now(UTC), max(pages, 1))

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
