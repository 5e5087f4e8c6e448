"""Damage to every kind of file of a run: each case resumes to the metrics of an uninterrupted
run, or stops with a message that says what is lost and what to do. Never a traceback, never
"resume with" the resume that just failed.

One tiny run on real MNIST is stopped inside its last segment (resume.pt present); each case
damages a copy of it and resumes through the CLI in-process.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from prunetui import config, store
from prunetui.cli import main
from prunetui.control import RunControl
from prunetui.events import Checkpointed, SegmentStarted
from prunetui.experiment import Experiment
from prunetui.store import new_run
from tests.conftest import REPO, tiny_overrides

LAST = "rewind:10"  # the last segment: round 1 of a late-rewind scheme (needs rewind-10.pt)


def tiny_config(root: Path) -> config.Config:
    extra = {"prune.rounds": 1, "prune.schemes": ["keep", LAST]}
    return config.apply_overrides(config.Config(), tiny_overrides(root, **extra))


def comparable(run: store.RunDir) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "elapsed_s"} for row in run.metrics()]


@pytest.fixture(scope="module")
def reference(mnist_root, tmp_path_factory) -> store.RunDir:
    run = new_run(tiny_config(mnist_root), tmp_path_factory.mktemp("ref"), "ref")
    assert Experiment(run).execute() == store.FINISHED
    return run


@pytest.fixture(scope="module")
def interrupted(mnist_root, tmp_path_factory) -> store.RunDir:
    """Stopped after the first epoch checkpoint of its last segment."""
    run = new_run(tiny_config(mnist_root), tmp_path_factory.mktemp("stopped"), "stopped")
    control = RunControl()
    current = []

    def on_event(event) -> None:
        if isinstance(event, SegmentStarted):
            current.append(event.scheme)
        if isinstance(event, Checkpointed) and current[-1] == LAST:
            control.request_stop()

    assert Experiment(run, on_event, control).execute() == store.INTERRUPTED
    assert run.resume_checkpoint().exists()
    return run


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 2, min(len(data), len(data) // 2 + 4)):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))


def empty(path: Path) -> None:
    path.write_bytes(b"")


def delete(path: Path) -> None:
    path.unlink()


DAMAGE: dict[str, Callable[[Path], None]] = {
    "truncate": truncate, "flip": flip, "empty": empty, "delete": delete}

# file kind -> (path in the run, what the one-line note must name; None: nothing to say)
FILES = {
    "resume.pt": ("checkpoints/resume.pt", "training since the last finished segment is lost"),
    "finished-checkpoint": ("checkpoints/r0/round-01-keep.pt", "round 1 keep"),
    "init.pt": ("checkpoints/r0/init.pt", "regenerated from the seed and confirmed"),
    "rewind.pt": ("checkpoints/r0/rewind-10.pt", "round 0 dense and the segments after it"),
    "metrics.jsonl": ("metrics.jsonl", "rebuilt from the checkpoints"),
    "sparsity.jsonl": ("sparsity.jsonl", "rebuilt from the checkpoints"),
    "status.json": ("status.json", None),
    "config.toml": ("config.toml", "restored from"),
}


def resume(run: store.RunDir, capsys) -> tuple[int, str]:
    code = main(["run", "--resume", str(run.path), "--plain"])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def copy_of(run: store.RunDir, tmp_path: Path) -> store.RunDir:
    return store.RunDir(shutil.copytree(run.path, tmp_path / run.name))


@pytest.mark.parametrize("damage", DAMAGE)
@pytest.mark.parametrize("kind", FILES)
def test_damaged_file_then_resume_ends_with_identical_metrics(kind, damage, interrupted,
                                                              reference, tmp_path, capsys):
    run = copy_of(interrupted, tmp_path)
    rel, note = FILES[kind]
    DAMAGE[damage](run.path / rel)
    code, output = resume(run, capsys)
    assert code == 0, output
    assert "Traceback" not in output
    assert comparable(run) == comparable(reference)
    assert run.read_status().state == store.FINISHED
    if note is not None:
        assert Path(rel).name in output and note in output
    if damage != "delete":  # the damaged copy is kept beside the file, never deleted
        assert list(run.path.rglob(Path(rel).name + ".damaged-*")) or kind == "status.json"
    check = main(["check", str(run.path)])
    capsys.readouterr()
    assert check == 0


def test_init_that_cannot_be_confirmed_stops_with_what_still_works(interrupted, tmp_path,
                                                                   capsys):
    run = copy_of(interrupted, tmp_path)
    init = run.replicate_dir(0) / "init.pt"
    truncate(init)  # (a flipped byte in an unverified file can load: no checksum, no proof)
    store.sidecar(init).unlink()
    code, output = resume(run, capsys)
    assert code == 1
    assert "Traceback" not in output and "Resume with" not in output
    for what in ("init.pt", "cannot be confirmed", "prunetui report", "prunetui run "):
        assert what in output
    code, again = resume(run, capsys)  # the same clear answer, not a different failure
    assert code == 1 and "cannot be confirmed" in again


@pytest.mark.parametrize("kind", ["finished-checkpoint", "metrics.jsonl", "init.pt"])
def test_check_names_damage_and_its_cost_and_changes_nothing(kind, reference, tmp_path,
                                                             capsys):
    assert main(["check", str(reference.path)]) == 0
    assert "All" in capsys.readouterr().out
    run = copy_of(reference, tmp_path)
    rel, _ = FILES[kind]
    flip(run.path / rel)
    before = sorted(p.name for p in run.path.rglob("*"))
    assert main(["check", str(run.path)]) == 1
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if rel in x)
    assert "damaged" in line and " - " in line  # the state and what it costs
    assert sorted(p.name for p in run.path.rglob("*")) == before


def test_a_damaged_finished_run_is_repaired_by_resume(reference, tmp_path, capsys):
    run = copy_of(reference, tmp_path)
    flip(run.path / FILES["finished-checkpoint"][0])
    code, output = resume(run, capsys)
    assert code == 0 and "repairing" in output
    assert comparable(run) == comparable(reference)
    assert main(["check", str(run.path)]) == 0


def test_report_and_runs_warn_about_a_damaged_line_and_show_the_rest(reference, tmp_path,
                                                                    capsys):
    run = copy_of(reference, tmp_path)
    lines = run.metrics_path.read_bytes().split(b"\n")
    lines[4] = b"{not json"
    run.metrics_path.write_bytes(b"\n".join(lines))
    assert main(["report", str(run.path), "--no-plot"]) == 0
    captured = capsys.readouterr()
    assert "metrics.jsonl line 5: not valid JSON" in captured.err
    assert "dense" in captured.out and "rewind:10" in captured.out
    assert main(["runs", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "metrics.jsonl line 5" in captured.err and run.name in captured.out


def test_runs_lists_a_run_with_a_garbled_config(reference, tmp_path, capsys):
    run = copy_of(reference, tmp_path)
    run.config_path.write_bytes(b"\xff\xfe[[[")
    assert main(["runs", str(tmp_path)]) == 0
    assert run.name in capsys.readouterr().out


def test_kill_9_then_truncated_resume_pt_resumes_to_identical_metrics(mnist_root, reference,
                                                                      tmp_path):
    run = new_run(tiny_config(mnist_root), tmp_path, "killed")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "prunetui", "run", "--resume", str(run.path), "--plain"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not run.resume_checkpoint().exists():  # killed after its first epoch checkpoint
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    truncate(run.resume_checkpoint())
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "resume.pt is damaged" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert comparable(run) == comparable(reference)


def test_check_and_resume_name_the_same_restart_for_a_needed_rewind_point(interrupted,
                                                                         reference, tmp_path,
                                                                         capsys):
    """rewind-10.pt is still needed by the segment in progress: check and resume must both
    restart at the dense round (check once described the later segment)."""
    from prunetui.integrity import check_run

    run = copy_of(interrupted, tmp_path)
    flip(run.replicate_dir(0) / "rewind-10.pt")
    report = check_run(run)
    assert report.restart == "round 0 dense, from its start"
    keep = next(f for f in report.files if f.path.endswith("round-01-keep.pt"))
    assert keep.ok and "retrained" in keep.cost  # intact, but the restart is before it
    resume_pt = next(f for f in report.files if f.path.endswith("resume.pt"))
    assert resume_pt.ok  # it belongs to a segment the restart retrains anyway
    assert main(["check", str(run.path)]) == 1
    assert f"restarts at {report.restart}" in capsys.readouterr().out
    code, output = resume(run, capsys)
    assert code == 0, output
    assert f"resume restarts at {report.restart}" in output
    assert comparable(run) == comparable(reference)


@pytest.mark.parametrize("damage", ["none", "metrics.jsonl"])
def test_resume_reads_each_checkpoint_once(damage, interrupted, reference, tmp_path,
                                           monkeypatch):
    """Every checkpoint file is read at most once by a resume (digest, content and the rows a
    rebuild needs all come from that one read)."""
    run = copy_of(interrupted, tmp_path)
    if damage != "none":
        flip(run.path / damage)
    reads: dict[Path, int] = {}
    real = Path.read_bytes

    def counting(path: Path) -> bytes:
        if path.suffix == ".pt":
            reads[path] = reads.get(path, 0) + 1
        return real(path)

    monkeypatch.setattr(Path, "read_bytes", counting)
    assert Experiment(run).execute() == store.FINISHED
    monkeypatch.undo()
    finals = {p for p in run.path.rglob("round-*.pt")}
    assert set(reads) >= finals - {run.segment_checkpoint(0, 1, LAST)}  # all but the one trained
    assert max(reads.values()) == 1, {str(p.relative_to(run.path)): n for p, n in reads.items()
                                      if n > 1}
    assert comparable(run) == comparable(reference)
