"""A full disk or a store that cannot be written: a message naming the path, every finished stage kept,
and a rerun that resumes once there is room.

The faults are real where this machine allows it: writes to ``/dev/full`` fail with ENOSPC as a full
disk does, and where user namespaces are available (``unshare -rm``) a 1 MiB tmpfs holds the store and
is then remounted read-only. One test injects the error at the manifest write, a point a real disk
cannot be made to hit reliably.
"""

import errno
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from repro.runs.store import RunStore, StoreError


def _small(workdir):
    (workdir / "result.txt").write_text("small")
    return {"value": 1}


def _into_dev_full(workdir):
    """Write the way a model save does, into a file on a device that is full."""
    (workdir / "weights.bin").symlink_to("/dev/full")
    with open(workdir / "weights.bin", "wb") as handle:
        handle.write(b"\0" * 1_000_000)
        handle.flush()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this system")
def test_a_full_disk_while_computing_names_the_path_and_keeps_finished_stages(tmp_path):
    store = RunStore(tmp_path / "store")
    first = store.run("first", {}, _small)
    with pytest.raises(StoreError, match=r"stage big/\w+: the disk is full at .*store.*every finished stage is kept"):
        store.run("big", {}, _into_dev_full)
    assert store.get("first", {}) == first and (first / "result.txt").read_text() == "small"
    assert store.incomplete() == [] and store.get("big", {}) is None  # nothing half-written
    [failure] = store.failures()
    assert "No space left on device" in failure["error"]
    assert store.run("big", {}, _small).results == {"value": 1}  # room again: the rerun completes
    assert store.failures() == []


def test_a_full_disk_at_the_manifest_write_loses_nothing(tmp_path, monkeypatch):
    store = RunStore(tmp_path / "store")
    first = store.run("first", {}, _small)

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(RunStore, "_write_json", staticmethod(full))
    with pytest.raises(StoreError, match=r"the disk is full at .*manifest\.json"):
        store.run("second", {}, _small)
    monkeypatch.undo()
    assert store.get("first", {}) == first and store.get("second", {}) is None and store.incomplete() == []
    assert store.run("second", {}, _small).results == {"value": 1}


def test_an_unreadable_input_is_the_stages_own_error_not_the_stores(tmp_path):
    from repro.runs.store import StageFailed

    def reads_elsewhere(workdir):
        raise PermissionError(errno.EACCES, "Permission denied", "/somewhere/else/data.jsonl")

    with pytest.raises(StageFailed, match="Permission denied.*/somewhere/else/data.jsonl"):
        RunStore(tmp_path / "store").run("reader", {}, reads_elsewhere)


def test_the_cli_turns_a_full_disk_into_one_line_and_exit_code_2(tmp_path, capsys, monkeypatch):
    from repro import cli

    def full(args):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "book" / "00_world.ipynb"))

    monkeypatch.setitem(cli.COMMANDS, "status", full)
    assert cli.main(["status"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("repro: error: No space left on device at ") and "00_world.ipynb" in err
    assert err.count("\n") == 1


# -- a real small filesystem -----------------------------------------------------------------------
def _namespaces_work() -> bool:
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                           capture_output=True)
    return probe.returncode == 0


TMPFS_SCRIPT = textwrap.dedent("""
    import json, subprocess, sys
    from pathlib import Path
    from repro.runs.store import RunStore, StoreError

    root = Path(sys.argv[1])
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(root)], check=True)
    store = RunStore(root / "store")
    out = {}
    first = store.run("first", {}, lambda w: (w / "a.bin").write_bytes(b"1" * 100_000) and {"ok": 1})
    try:
        store.run("big", {}, lambda w: (w / "b.bin").write_bytes(b"2" * 3_000_000))
    except StoreError as exc:
        out["full"] = str(exc)
    out["first_after_full"] = (store.get("first", {}) / "a.bin").read_bytes() == b"1" * 100_000
    out["tmp_after_full"] = [p.name for p in store.incomplete()]
    subprocess.run(["mount", "-o", "remount,ro", str(root)], check=True)
    try:
        store.run("third", {}, lambda w: (w / "c.bin").write_bytes(b"3"))
    except StoreError as exc:
        out["read_only"] = str(exc)
    out["first_after_ro"] = store.get("first", {}) is not None
    subprocess.run(["mount", "-o", "remount,rw", str(root)], check=True)
    out["resumed"] = store.run("big", {}, lambda w: (w / "b.bin").write_bytes(b"2" * 300_000) and {"ok": 2}).results
    print(json.dumps(out))
""")


@pytest.mark.skipif(not _namespaces_work(), reason="user namespaces (unshare -rm) are not available here")
def test_a_real_full_then_read_only_filesystem(tmp_path):
    mount = tmp_path / "fs"
    mount.mkdir()
    proc = subprocess.run(["unshare", "-rm", sys.executable, "-c", TMPFS_SCRIPT, str(mount)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = __import__("json").loads(proc.stdout.strip().splitlines()[-1])
    assert "the disk is full" in out["full"] and str(mount) in out["full"]
    assert out["first_after_full"] and out["tmp_after_full"] == []
    assert "Read-only file system" in out["read_only"] and str(mount) in out["read_only"]
    assert out["first_after_ro"]
    assert out["resumed"] == {"ok": 2}
