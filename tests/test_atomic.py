"""capgate.store.atomic: whole file or old file, unique temp names, temp removed on failure, umask honoured."""

import os
import threading

import pytest

from capgate.store.atomic import atomic_write, atomic_write_json, atomic_write_text


def test_replaces_whole_file_and_honours_umask(tmp_path):
    p = tmp_path / "sub" / "a.txt"
    atomic_write_text(p, "one")
    old = os.umask(0o022)
    try:
        atomic_write_text(p, "two")
    finally:
        os.umask(old)
    assert p.read_text() == "two"
    assert oct(p.stat().st_mode & 0o777) == oct(0o644)
    assert [q.name for q in p.parent.iterdir()] == ["a.txt"]


def test_failure_keeps_old_file_and_removes_temp(tmp_path):
    p = tmp_path / "a.json"
    atomic_write_json(p, {"x": 1})

    def boom(fh):
        fh.write(b"partial")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        atomic_write(p, boom)
    assert p.read_text() == '{\n "x": 1\n}\n'
    assert [q.name for q in tmp_path.iterdir()] == ["a.json"]


def test_concurrent_writers_never_tear(tmp_path):
    p = tmp_path / "c.txt"
    texts = [str(i) * 10000 for i in range(8)]
    threads = [threading.Thread(target=atomic_write_text, args=(p, t), kwargs={"fsync": False}) for t in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert p.read_text() in texts
    assert [q.name for q in tmp_path.iterdir()] == ["c.txt"]


def test_json_nan_policy(tmp_path):
    with pytest.raises(ValueError):
        atomic_write_json(tmp_path / "n.json", {"x": float("nan")}, allow_nan=False)
    assert not list(tmp_path.iterdir())
