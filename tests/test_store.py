"""Run store: atomic writes, torn lines, status of dead processes, a really full disk."""

from __future__ import annotations

import errno
import os
import subprocess
import uuid
from pathlib import Path

import pytest
import torch

from prunetui import config, fileio, store
from prunetui.experiment import Experiment
from prunetui.store import new_run
from tests.conftest import tiny_overrides


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "ckpt.pt"
    store.save_checkpoint({"w": torch.ones(3)}, path)

    def half_then_full(fh):
        fh.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(store.StoreError, match="Disk full"):
        store.atomic_write(path, half_then_full)
    assert torch.equal(store.load_checkpoint(path)["w"], torch.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt", "ckpt.pt.sha256"]
    # no temp file left


def test_a_kill_at_any_step_of_a_checked_write_leaves_a_file_that_verifies(tmp_path,
                                                                         monkeypatch):
    path = tmp_path / "status.json"
    store.write_checked(path, b"one")
    real = fileio.atomic_write

    def killed_at(step: int):
        calls = []

        def write(target, fn):
            calls.append(target)
            if len(calls) == step:
                raise KeyboardInterrupt
            real(target, fn)
        return write

    for attempt in (b"two", b"three", b"four"):  # killed between sidecar and file, again and again
        monkeypatch.setattr(fileio, "atomic_write", killed_at(2))
        with pytest.raises(KeyboardInterrupt):
            store.write_checked(path, attempt)
        assert path.read_bytes() == b"one" and store.verify(path) == store.INTACT
    monkeypatch.setattr(fileio, "atomic_write", killed_at(3))  # file written, sidecar not yet
    with pytest.raises(KeyboardInterrupt):
        store.write_checked(path, b"two")
    monkeypatch.undo()
    assert path.read_bytes() == b"two" and store.verify(path) == store.INTACT
    store.write_checked(path, b"two")
    assert store.verify(path) == store.INTACT
    assert store.verify(path, b"one") == store.DAMAGED  # a finished write accepts only itself
    path.write_bytes(b"twO")
    assert store.verify(path) == store.DAMAGED
    moved = store.move_aside(path)
    assert moved is not None and moved.read_bytes() == b"twO"
    assert store.sidecar(moved).exists() and store.verify(path) == store.MISSING
    path.write_bytes(b"three")
    assert store.verify(path) == store.UNVERIFIED  # no sidecar: readers try to load it


def test_a_damaged_checkpoint_is_named_not_loaded(tmp_path):
    path = tmp_path / "c.pt"
    store.save_checkpoint({"w": torch.ones(1000)}, path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1  # torch itself would load this without a word
    path.write_bytes(bytes(data))
    with pytest.raises(store.DamagedFile, match="checksum"):
        store.load_checkpoint(path)


def test_atomic_files_get_the_usual_permissions(tmp_path):
    path = tmp_path / "status.json"
    store.atomic_write_text(path, "{}")
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_checkpoints_load_with_weights_only(tmp_path):
    path = tmp_path / "c.pt"
    store.save_checkpoint({"w": torch.arange(4), "meta": {"round": 1, "rows": [{"a": 0.5}]}},
                          path)
    assert store.load_checkpoint(path)["meta"]["rows"] == [{"a": 0.5}]
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(store.StoreError, match="cannot be read"):
        store.load_checkpoint(tmp_path / "bad.pt")


def test_jsonl_ignores_a_torn_last_line_and_tails_incrementally(tmp_path):
    path = tmp_path / "m.jsonl"
    tail = store.JsonlTail(path)
    assert tail.read_new() == []
    offset = store.append_jsonl(path, {"a": 1})
    with path.open("ab") as fh:
        fh.write(b'{"a": 2, "b"')  # killed mid-write
    assert store.read_jsonl(path) == [{"a": 1}]
    assert tail.read_new() == [{"a": 1}]
    store.truncate(path, offset)
    store.append_jsonl(path, {"a": 3})
    assert tail.read_new() == [{"a": 3}]
    store.truncate(path, 0)
    store.append_jsonl(path, {"a": 4})
    assert tail.read_new() == [{"a": 4}]  # a file cut back is re-read from the start


def _metric_row(i: int) -> dict:
    return {"replicate": 0, "round": 0, "scheme": "dense", "iteration": i, "remaining": 1.0,
            "val_loss": 0.5, "val_acc": 0.9, "test_acc": 0.9}


def test_damaged_lines_are_named_and_the_rest_is_read(tmp_path):
    path = tmp_path / "metrics.jsonl"
    for i in range(4):
        store.append_jsonl(path, _metric_row(i))
    data = bytearray(path.read_bytes())
    second = data.index(b"\n") + 1
    data[second] = ord("#")  # line 2 no longer JSON
    path.write_bytes(bytes(data))
    store.append_jsonl(path, {"replicate": 0, "round": 0})  # line 5: keys missing
    with path.open("ab") as fh:
        fh.write(b'{"replicate"')  # torn last line: a kill mid-write, not damage
    records, problems = store.read_jsonl_checked(path, store.MetricRow)
    assert [r["iteration"] for r in records] == [0, 2, 3]
    assert [str(p) for p in problems] == ["metrics.jsonl line 2: not valid JSON",
                                          "metrics.jsonl line 5: 'scheme' missing"]
    assert store.read_jsonl(path)[0] == _metric_row(0)  # the old reader still works


def test_rows_are_checked_against_their_schema_optional_keys_and_nested_values_included(
        tmp_path):
    """MetricRow and SparsityRecord are the one statement of what a row holds: a key the
    schema marks optional may be absent, but when present it must have its declared type, and
    so must the values inside a record's per-layer objects."""
    path = tmp_path / "metrics.jsonl"
    for row in (_metric_row(0), {**_metric_row(1), "epoch": "one"},
                {**_metric_row(2), "replicate": True},
                {**_metric_row(3), "epoch": 0.5, "train_loss": 1, "elapsed_s": 2.5},
                {**_metric_row(4), "train_loss": None}):  # optional: absent, never null
        store.append_jsonl(path, row)
    records, problems = store.read_jsonl_checked(path, store.MetricRow)
    assert [r["iteration"] for r in records] == [0, 3]
    assert [str(p) for p in problems] == ["metrics.jsonl line 2: 'epoch' is not a number",
                                          "metrics.jsonl line 3: 'replicate' is not an integer",
                                          "metrics.jsonl line 5: 'train_loss' is not a number"]
    sparsity = tmp_path / "sparsity.jsonl"
    record = {"replicate": 0, "round": 1, "scheme": "keep", "remaining": 0.8,
              "layers": {"fc1.weight": 0.8}, "counts": {"fc1.weight": [80, 100]}}
    for bad in ({**record, "counts": {"fc1.weight": 80}}, {**record, "layers": []},
                {**record, "units": {"fc1.weight": [8, 10]}}):
        store.append_jsonl(sparsity, bad)
    records, problems = store.read_jsonl_checked(sparsity, store.SparsityRecord)
    assert records == [{**record, "units": {"fc1.weight": [8, 10]}}]
    assert [str(p) for p in problems] == [
        "sparsity.jsonl line 1: 'counts' is not an object of lists of integers",
        "sparsity.jsonl line 2: 'layers' is not an object of numbers"]


def test_tail_numbers_damaged_lines_across_reads(tmp_path):
    path = tmp_path / "metrics.jsonl"
    tail = store.JsonlTail(path, store.MetricRow)
    store.append_jsonl(path, _metric_row(0))
    with path.open("ab") as fh:
        fh.write(b"\xff\xfe\n")
    assert [len(x) for x in tail.read_new_checked()] == [1, 1]
    store.append_jsonl(path, _metric_row(1))
    store.append_jsonl(path, {**_metric_row(2), "val_acc": "high"})
    records, problems = tail.read_new_checked()
    assert [r["iteration"] for r in records] == [1]
    assert [str(p) for p in problems] == ["metrics.jsonl line 4: 'val_acc' is not a number"]
    assert [p.line for p in tail.problems] == [2, 4]


def test_tail_reads_a_long_file_a_chunk_at_a_time_as_it_would_in_one_go(tmp_path):
    path = tmp_path / "metrics.jsonl"
    for i in range(40):
        store.append_jsonl(path, _metric_row(i) if i % 13 else {**_metric_row(i), "round": "x"})
    with path.open("ab") as fh:
        fh.write(b'{"replicate"')  # torn last line: not read, not damage
    whole = store.JsonlTail(path, store.MetricRow)
    records, problems = whole.read_new_checked()
    chunked = store.JsonlTail(path, store.MetricRow)
    pieces, bad, reads, more = [], [], 0, True
    while more:
        new, new_bad, more = chunked.read_chunk(300)  # cuts lines: each is read to its end
        pieces += new
        bad += new_bad
        reads += 1
    assert reads > 5 and pieces == records and bad == problems == whole.problems
    assert [p.line for p in problems] == [1, 14, 27, 40]
    assert chunked.offset == whole.offset and chunked.lines == whole.lines == 40
    assert chunked.read_chunk(300) == ([], [], False) and chunked.pending_bytes() == 12


def test_tail_skips_and_numbers_the_rows_its_check_refuses(tmp_path):
    path = tmp_path / "metrics.jsonl"
    for i in range(5):
        store.append_jsonl(path, _metric_row(i))
    with path.open("ab") as fh:
        fh.write(b"not json\n")
    store.append_jsonl(path, _metric_row(6))

    def odd(row: dict) -> str | None:
        return "odd iteration" if row["iteration"] % 2 else None

    tail = store.JsonlTail(path, store.MetricRow, check=odd)
    records, problems = tail.read_new_checked()
    assert [r["iteration"] for r in records] == [0, 2, 4, 6]
    assert [str(p) for p in problems] == ["metrics.jsonl line 2: odd iteration",
                                          "metrics.jsonl line 4: odd iteration",
                                          "metrics.jsonl line 6: not valid JSON"]


def test_tail_notices_a_cut_back_file_and_restarts(tmp_path):
    path = tmp_path / "metrics.jsonl"
    tail = store.JsonlTail(path, store.MetricRow)
    assert not tail.cut_back() and tail.pending_bytes() == 0  # no file yet
    offset = store.append_jsonl(path, _metric_row(0))
    store.append_jsonl(path, _metric_row(1))
    assert tail.pending_bytes() == path.stat().st_size
    assert len(tail.read_chunk(None)[0]) == 2 and not tail.cut_back()
    store.truncate(path, offset)
    assert tail.cut_back() and tail.pending_bytes() == offset
    tail.restart()
    assert (tail.offset, tail.lines, tail.problems) == (0, 0, [])
    path.unlink()
    tail.read_new()
    path.mkdir()  # a folder in its place: read_chunk raises, read_new_checked says it once
    with pytest.raises(OSError):
        tail.read_chunk(100)
    assert [p.reason.split(" (")[0] for p in tail.read_new_checked()[1]] == ["cannot be read"]
    assert tail.read_new_checked() == ([], [])


def test_a_finished_run_with_a_cut_off_last_line_reports_it(tmp_path):
    run = store.create_run(tmp_path, "r", "")
    store.append_jsonl(run.metrics_path, _metric_row(0))
    with run.metrics_path.open("ab") as fh:
        fh.write(b'{"replicate": 0, "ro')
    run.write_status(store.INTERRUPTED)
    assert run.metrics_checked()[1] == []  # killed mid-write: the resume cuts it off
    run.write_status(store.FINISHED)
    assert [str(p) for p in run.metrics_checked()[1]] == [
        "metrics.jsonl line 2: cut off (the run had finished)"]


def test_damaged_status_and_unreadable_metrics_never_raise(tmp_path):
    run = store.create_run(tmp_path, "r", "")
    for text in ('{"state": "running", "pid": 1.5}', "[1]", "{", ""):
        run.status_path.write_text(text)  # no sidecar: only the content can tell
        assert run.read_status().state == store.INTERRUPTED, text
    run.write_status(store.FINISHED)
    run.status_path.write_text(run.status_path.read_text().replace("finished", "finishes"))
    assert run.read_status().message == "status.json is damaged"  # checksum mismatch
    run.metrics_path.mkdir()
    assert [p.reason for p in run.metrics_checked()[1]] == ["cannot be read (Is a directory)"]


def test_status_of_a_dead_process_reads_as_interrupted(tmp_path):
    run = store.create_run(tmp_path, "r", "")
    proc = subprocess.Popen(["true"])
    proc.wait()
    run.write_status(store.RUNNING, pid=proc.pid)
    assert run.read_status().effective_state == store.INTERRUPTED
    run.write_status(store.RUNNING)
    assert run.read_status().effective_state == store.RUNNING


def test_existing_run_directory_is_never_reused(tmp_path):
    store.create_run(tmp_path, "r", "x")
    with pytest.raises(store.StoreError, match="--resume"):
        store.create_run(tmp_path, "r", "y")
    with pytest.raises(store.StoreError):
        store.check_run_name("../evil")
    assert store.unique_name(tmp_path, "r") == "r-2"


@pytest.fixture
def small_disk(tmp_path):
    mount_point = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount_point)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        if os.environ.get("PRUNETUI_REQUIRE_DATA") == "1" and os.geteuid() == 0:
            pytest.fail(f"cannot mount a small tmpfs: {result.stderr}")
        pytest.skip("mounting a small tmpfs needs root")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_full_disk_stops_with_a_clear_error_and_resumes_after_space_is_freed(
        mnist_root, small_disk, tmp_path):
    cfg = config.apply_overrides(config.Config(), tiny_overrides(mnist_root))
    reference = new_run(cfg, tmp_path, "ref")
    Experiment(reference).execute()
    run = new_run(cfg, small_disk, "full")
    with pytest.raises(store.StoreError, match="Disk full") as info:
        Experiment(run).execute()
    assert "intact" in str(info.value)
    assert run.read_status().state == store.INTERRUPTED
    for ckpt in run.checkpoints.rglob("*.pt"):
        store.load_checkpoint(ckpt)  # every checkpoint on disk is complete
    assert not list(run.checkpoints.rglob("*.tmp"))
    subprocess.run(["mount", "-o", "remount,size=256m", str(small_disk)], check=True)
    assert Experiment(run).execute() == store.FINISHED

    def rows(r: store.RunDir):
        return [{k: v for k, v in row.items() if k != "elapsed_s"} for row in r.metrics()]

    assert rows(run) == rows(reference)


def test_list_runs_finds_run_directories_only(tmp_path):
    store.create_run(tmp_path, "a", "")
    (tmp_path / "not-a-run").mkdir()
    assert [r.name for r in store.list_runs(tmp_path)] == ["a"]
    assert store.list_runs(tmp_path / "missing") == []
    assert isinstance(store.RunDir(Path("x")).name, str)
