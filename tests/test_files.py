"""embspace.files: atomic writes leave the old file on failure, and locks exclude each other."""

import json

import pytest

from embspace.files import flock, locked, write_atomic, write_json_atomic, write_text_atomic


def test_atomic_writes_replace_the_file_and_leave_no_temporary(tmp_path):
    path = tmp_path / "deep" / "out.json"
    write_json_atomic(path, {"label": "żółw"})
    write_text_atomic(tmp_path / "note.txt", "one\n")
    assert json.loads(path.read_text(encoding="utf-8")) == {"label": "żółw"}
    assert (tmp_path / "note.txt").read_text() == "one\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.json"]


def test_a_failing_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "out.txt"
    write_text_atomic(path, "old")

    def half_then_fail(temporary):
        temporary.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_atomic(path, half_then_fail)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_an_exclusive_lock_refuses_a_second_holder_until_released(tmp_path):
    lock = tmp_path / ".lock"
    with locked(lock):
        with pytest.raises(BlockingIOError), locked(lock, wait=False):
            pass
    with locked(lock, wait=False):
        pass


def test_shared_locks_coexist_but_exclude_a_writer(tmp_path):
    lock = tmp_path / ".lock"
    with locked(lock, shared=True), locked(lock, shared=True, wait=False):
        with pytest.raises(BlockingIOError), locked(lock, wait=False):
            pass


def test_flock_on_an_open_descriptor_excludes_a_path_lock(tmp_path):
    """export locks the descriptor it checked (no second open by path); a path lock then waits for it."""
    path = tmp_path / "out.jsonl"
    with open(path, "a") as handle:
        flock(handle.fileno(), wait=False)
        with pytest.raises(BlockingIOError), locked(path, wait=False):
            pass
