"""Writing files atomically: a reader sees the old file or the whole new one, never half of one.

Every file colorize writes (photos, weights, checkpoints, reports of numbers) goes through
``atomic_write``: the bytes go to a hidden temporary in the same folder, which is renamed over
the target only once complete. A crash or Ctrl-C leaves at most that temporary behind; its
name says who wrote it (``.colorize.PID.PLACE-XXXXXXXX.tmp``: the process, and a tag of the
machine whose process numbers those are), so a later run can tell a stale one from one another
process is writing right now, and remove it.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import os
import re
import socket
import tempfile
import time
from pathlib import Path
from typing import BinaryIO, Callable

TEMPORARY_PREFIX = ".colorize."
TEMPORARY_SUFFIX = ".tmp"
# PLACE is missing from the names earlier releases gave (".colorize.PID.XXXXXXXX.tmp").
_TEMPORARY = re.compile(r"^\.colorize\.(\d+)\.(?:([0-9a-f]{8})-)?[^.]+\.tmp$")
# A temporary untouched this long is left over, whoever wrote it: a writer touches its
# temporary every few seconds. Only this age tells of one written from another machine on a
# shared folder (its PID means nothing here), or by a process whose number is now another's.
_STALE_AFTER_S = 15 * 60


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates files readable by their owner only; outputs get the usual permissions.
_FILE_MODE = 0o666 & ~_current_umask()


class NotWritableError(OSError):
    """A file or folder colorize must write cannot be written; the message is one line."""


class NoSpaceError(NotWritableError):
    """The disk filled while writing; the partial file has been removed."""


def check_writable(folder: Path) -> None:
    """Make sure files can be created in ``folder`` (made if missing), before hours of work
    depend on it: a model folder that is a file, read-only or on a full disk is found now."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(folder / ".colorize-write-test", lambda handle: handle.write(b"ok"))
        (folder / ".colorize-write-test").unlink()
    except NotWritableError:
        raise
    except OSError as error:
        raise NotWritableError(f"cannot write in {folder}: {error.strerror or error}") from None


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write(handle)`` on a temporary beside ``path``, then rename it to ``path``.

    The temporary's name has a fixed length, so a target name near the file system's limit
    (255 bytes) still fits. On any failure the temporary is removed; a full disk is raised as
    ``NoSpaceError`` naming the target, whatever layer noticed it first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f"{TEMPORARY_PREFIX}{os.getpid()}.{_place()}-"
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=TEMPORARY_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException as error:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            raise NoSpaceError(f"no space left on the device to write {path}") from None
        raise
    return path


class FolderBusyError(NotWritableError):
    """Another process is writing into the same output folder."""


@contextlib.contextmanager
def exclusive_folder(folder: Path, part: str | None = None):
    """Hold ``folder`` (made if missing) for this process alone while inside: a second run
    writing into it is refused at once instead of redoing the same work beside the first.
    The lock is the kernel's (flock on the folder itself), so no lock file is left behind
    and a killed process releases it.

    ``part`` names this run's part of a run split in parts (``"2-of-4"``, from ``--shard
    2/4``): the parts share the folder, each holding its own part alone (a hidden lock file,
    removed on leaving), while a whole run and the parts still keep out of each other.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # no flock on this platform: runs are simply not kept apart
        yield
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(descriptor, (fcntl.LOCK_EX if part is None else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FolderBusyError(
                f"another colorize run is writing into {folder}; let it finish (a second run resumes where it stops) "
                "or choose another --output"
            ) from None
        if part is None:
            yield
        else:
            with _exclusive_file(folder / f"{TEMPORARY_PREFIX}part-{part}.lock", folder, part):
                yield
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def _exclusive_file(path: Path, folder: Path, part: str):
    import fcntl

    while True:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, _FILE_MODE)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            raise FolderBusyError(f"part {part} of this run is already writing into {folder}") from None
        try:
            current = os.stat(path).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(descriptor).st_ino:
            break
        # The file was removed by the holder that was leaving as it was opened here: the lock
        # on it holds nothing. Take the one now in its place.
        os.close(descriptor)
    try:
        yield
    finally:
        os.unlink(path)  # removed while still held: whoever opens it next finds it gone, or new
        os.close(descriptor)


def remove_stale_temporaries(folder: Path) -> int:
    """Remove the temporaries that crashed colorize processes left in ``folder``; returns how many."""
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        match = _TEMPORARY.match(entry.name)
        if match is None:
            continue
        try:
            if entry.is_file(follow_symlinks=False) and _is_stale(int(match[1]), match[2], entry):
                os.unlink(entry.path)
                removed += 1
        except OSError:
            continue
    return removed


def _is_stale(pid: int, place: str | None, entry: os.DirEntry) -> bool:
    """Whether nobody can be writing this temporary: its process, of this machine, is gone, or
    it has not been touched for ``_STALE_AFTER_S``."""
    if place == _place() and not process_alive(pid):
        return True
    return time.time() - entry.stat(follow_symlinks=False).st_mtime > _STALE_AFTER_S


@functools.cache
def _place() -> str:
    """``process_place()`` in 8 hex digits, short enough for a temporary's name."""
    return hashlib.sha256(process_place().encode()).hexdigest()[:8]


def process_place() -> str:
    """Which process ids this process can see: its machine (host name and boot) and process id
    namespace (a container). Two processes with the same see the same numbers."""
    parts = [socket.gethostname()]
    for source in (
        lambda: Path("/proc/sys/kernel/random/boot_id").read_text().strip(),
        lambda: str(os.stat("/proc/self/ns/pid").st_ino),
    ):
        try:
            parts.append(source())
        except OSError:
            parts.append("?")
    return "/".join(parts)


def process_alive(pid: int) -> bool:
    """Whether a process of this number exists (another user's counts)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OverflowError:  # a number no process can have
        return False
    except PermissionError:  # another user's process
        return True
    return True
