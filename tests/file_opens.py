"""Which files a piece of code opens under a folder, seen by the kernel (Linux inotify).

Python's `open`, safetensors' Rust reader, sentencepiece's C++ reader and tokenizers all go
through `open(2)`, so inotify's IN_OPEN sees every one of them, whatever language opened it.
"""

from __future__ import annotations

import ctypes
import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

IN_OPEN = 0x20
IN_ISDIR = 0x40000000
IN_NONBLOCK = 0o4000
EVENT = struct.Struct("iIII")


@contextmanager
def opened_files(root: Path) -> Iterator[set[str]]:
    """Yield a set that, after the block, holds every file under `root` opened in it (relative)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(IN_NONBLOCK)
    if fd < 0:
        raise OSError(ctypes.get_errno(), "inotify_init1 failed")
    folders: dict[int, Path] = {}
    for folder in [root, *(p for p in root.rglob("*") if p.is_dir())]:
        wd = libc.inotify_add_watch(fd, str(folder).encode(), IN_OPEN)
        if wd < 0:
            raise OSError(ctypes.get_errno(), f"inotify_add_watch {folder} failed")
        folders[wd] = folder
    seen: set[str] = set()
    try:
        yield seen
        while True:
            try:
                buf = os.read(fd, 1 << 16)
            except BlockingIOError:
                break
            offset = 0
            while offset < len(buf):
                wd, mask, _cookie, size = EVENT.unpack_from(buf, offset)
                name = buf[offset + EVENT.size : offset + EVENT.size + size].rstrip(b"\0")
                offset += EVENT.size + size
                if name and not mask & IN_ISDIR:
                    path = folders[wd] / name.decode()
                    seen.add(path.relative_to(root).as_posix())
    finally:
        os.close(fd)
