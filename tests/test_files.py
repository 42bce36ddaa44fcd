"""Atomic writes (core/files.py) on a real full disk, and the removal of temporaries
that killed runs left behind."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from colorize.core.files import NoSpaceError, atomic_write, check_writable, remove_stale_temporaries


@contextlib.contextmanager
def small_disk(folder: Path, size: str):
    """A real file system of ``size`` bytes at ``folder`` (a tmpfs; needs root)."""
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_full_disk_keeps_the_old_file_whole_and_leaves_no_temporary(tmp_path):
    with small_disk(tmp_path / "disk", "64k") as disk:
        target = disk / "checkpoint.pt"
        atomic_write(target, lambda handle: handle.write(b"old" * 1000))
        with pytest.raises(NoSpaceError, match=f"no space left on the device to write {target}"):
            atomic_write(target, lambda handle: handle.write(b"new" * 100_000))
        assert target.read_bytes() == b"old" * 1000
        assert sorted(p.name for p in disk.iterdir()) == ["checkpoint.pt"]


def test_a_name_near_the_length_limit_still_gets_a_temporary(tmp_path):
    name = "x" * 250 + ".png"  # 254 bytes: a temporary named after it would pass 255
    assert atomic_write(tmp_path / name, lambda handle: handle.write(b"photo")).read_bytes() == b"photo"


def test_only_stale_temporaries_of_dead_processes_are_removed(tmp_path):
    old = time.time() - 3600
    dead, alive = _dead_pid(), os.getpid()
    files = {
        f".colorize.{dead}.abcd1234.tmp": old,  # killed long ago: removed
        f".colorize.{dead}.efgh5678.tmp": time.time(),  # just touched (another machine?): kept
        f".colorize.{alive}.ijkl9012.tmp": time.time(),  # a running process's: kept
        f".colorize.{alive}.mnop3456.tmp": old,  # untouched for an hour (its number reused?): removed
        ".photo.jpg.x1y2z3.tmp": old,  # not of our naming: kept
        "photo.jpg": old,
    }
    for name, mtime in files.items():
        (tmp_path / name).write_bytes(b"x")
        os.utime(tmp_path / name, (mtime, mtime))
    removed = {f".colorize.{dead}.abcd1234.tmp", f".colorize.{alive}.mnop3456.tmp"}
    assert remove_stale_temporaries(tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(set(files) - removed)


def test_a_model_folder_that_is_a_file_is_found_before_any_work(tmp_path):
    (tmp_path / "home").write_text("not a folder")
    with pytest.raises(OSError, match="cannot write in"):
        check_writable(tmp_path / "home" / "experts")
