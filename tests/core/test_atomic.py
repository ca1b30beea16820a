"""Atomic files and staged directories: nothing half-written, nothing of the user's lost."""

import subprocess
import sys

import pytest

from hashembed.core.atomic import StagedDirectory, atomic_write, recover
from hashembed.core.errors import OutputPathError


def recognise_marker(path):
    return None if (path / "MARK").is_file() else "is not a thing"


def write(target, content="new", overwrite=False, inputs=()):
    with StagedDirectory(target, "thing", recognise_marker, overwrite, inputs) as staged:
        (staged.path / "MARK").write_text(content)
        staged.commit()


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def sibling(target, state, pid):
    from hashembed.core.atomic import _HOST

    path = target.parent / f".{target.name}.{state}-{_HOST}-{pid}-0123abcd"
    path.mkdir()
    (path / "MARK").write_text(state)
    return path


def test_atomic_write_failure_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")

    def fail(f):
        f.write(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(path, fail)
    assert path.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == \
        ["out.bin"]


def test_an_empty_folder_may_be_written_a_file_may_not(tmp_path):
    (tmp_path / "empty").mkdir()
    write(tmp_path / "empty")
    assert (tmp_path / "empty" / "MARK").read_text() == "new"
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputPathError, match="is a file, not a thing directory"):
        write(tmp_path / "f", overwrite=True)


def test_a_target_holding_an_input_is_refused(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "edges.csv").write_text("0,1")
    with pytest.raises(OutputPathError, match="contains .*edges.csv, an input of this thing"):
        write(tmp_path / "data", inputs=[tmp_path / "data" / "edges.csv"])


def test_stale_staging_of_a_dead_writer_is_removed_a_live_one_kept(tmp_path):
    target = tmp_path / "t"
    dead = sibling(target, "staging", dead_pid())
    import os

    live = sibling(target, "staging", os.getpid())
    write(target)
    assert not dead.exists() and live.exists()


def test_a_target_moved_aside_by_a_killed_writer_is_restored(tmp_path):
    target = tmp_path / "t"
    old = sibling(target, "old", dead_pid())  # killed between its two renames
    assert recover(target) and (target / "MARK").read_text() == "old" and not old.exists()
    assert not recover(target)  # nothing left to restore
    stale = sibling(target, "old", dead_pid())  # the target exists: a stale copy is dropped
    write(target, overwrite=True)
    assert not stale.exists() and (target / "MARK").read_text() == "new"


def test_without_overwrite_a_target_that_appears_meanwhile_is_never_replaced(tmp_path):
    target = tmp_path / "t"
    with StagedDirectory(target, "thing", recognise_marker) as staged:
        (staged.path / "MARK").write_text("mine")
        target.mkdir()  # another writer finished first, after our start-up check
        (target / "MARK").write_text("theirs")
        with pytest.raises(OSError):
            staged._move_into_place()
    assert (target / "MARK").read_text() == "theirs"


def test_a_failed_move_keeps_the_finished_work_and_says_where(tmp_path, monkeypatch):
    import hashembed.core.atomic as atomic

    def refuse(*args):
        raise OSError(16, "Device or resource busy")

    monkeypatch.setattr(atomic, "_renameat2", lambda *a: False)
    monkeypatch.setattr(atomic.os, "rename", refuse)
    with pytest.raises(OutputPathError, match=r"could not move .* it is kept at .*staging"):
        write(tmp_path / "t")
    monkeypatch.undo()
    kept = [p for p in tmp_path.iterdir() if ".staging-" in p.name]
    assert len(kept) == 1 and (kept[0] / "MARK").read_text() == "new"


def test_the_current_directory_and_symlinks_are_refused(tmp_path, monkeypatch):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(OutputPathError, match="is a symbolic link"):
        write(tmp_path / "link", overwrite=True)
    monkeypatch.chdir(tmp_path / "real")
    with pytest.raises(OutputPathError, match="is or contains the current directory"):
        write(tmp_path / "real", overwrite=True)
    with pytest.raises(OutputPathError, match="is or contains the current directory"):
        write(tmp_path, overwrite=True)
