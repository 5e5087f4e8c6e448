"""The round loop end to end on real MNIST: determinism, schemes, resume after stop and kill -9."""

from __future__ import annotations

import functools
import os
import random
import signal
import subprocess
import sys
import time
import typing
from pathlib import Path

import pytest
import torch

from prunetui import config, results, store
from prunetui.control import RunControl
from prunetui.events import Evaluated, SegmentFinished
from prunetui.experiment import Experiment
from prunetui.nets import prunable_layers
from prunetui.nets.lenet import LeNet300100
from prunetui.replicates import fresh_state
from prunetui.segments import Segment, plan
from prunetui.store import new_run
from prunetui.trajectory import ReplicateState, segment_start
from tests.conftest import REPO, tiny_overrides


def tiny_config(root: Path, **extra) -> config.Config:
    return config.apply_overrides(config.Config(), tiny_overrides(root, **extra))


def comparable(run: store.RunDir) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "elapsed_s"} for row in run.metrics()]


def run_to_end(cfg: config.Config, out: Path, name: str, on_event=None) -> store.RunDir:
    run = new_run(cfg, out, name)
    assert Experiment(run, on_event or (lambda e: None)).execute() == store.FINISHED
    return run


@pytest.fixture(scope="module")
def reference(mnist_root, tmp_path_factory) -> store.RunDir:
    return run_to_end(tiny_config(mnist_root), tmp_path_factory.mktemp("ref"), "ref")


def test_metrics_rows_have_the_contract_fields(reference):
    rows = reference.metrics()
    segments = {(r["round"], r["scheme"]) for r in rows}
    assert segments == {(0, "dense")} | {(k, s) for k in (1, 2)
                                         for s in ("keep", "reinit", "rewind")}
    declared = set(typing.get_type_hints(store.MetricRow))  # the schema, optional keys too
    for row in rows:
        assert set(row) == declared
        assert 0 <= row["val_acc"] <= 1 and 0 <= row["test_acc"] <= 1
    assert [r["iteration"] for r in rows[:3]] == [10, 20, 30]
    assert rows[-1]["test_acc"] > 0.5  # 30 Adam steps on 600 images already learn MNIST
    assert reference.read_status().state == store.FINISHED


def test_same_config_and_seed_give_identical_numbers(reference, mnist_root, tmp_path):
    again = run_to_end(tiny_config(mnist_root), tmp_path, "again")
    assert comparable(again) == comparable(reference)
    other = run_to_end(tiny_config(mnist_root, **{"train.seed": 1}), tmp_path, "seed1")
    assert comparable(other) != comparable(reference)


def test_remaining_fractions_are_exact_per_layer(reference):
    records = {(r["round"], r["scheme"]): r for r in reference.sparsity()}
    for scheme in ("keep", "reinit", "rewind"):
        counts = records[(2, scheme)]["counts"]
        assert counts["fc1.weight"] == [150528, 235200]  # 235200 * 0.8 * 0.8 exactly
        assert counts["fc2.weight"] == [19200, 30000]
        assert counts["fc3.weight"] == [810, 1000]  # output layer at 10% per round
        assert records[(2, scheme)]["remaining"] == pytest.approx(170538 / 266200)
    declared = set(typing.get_type_hints(store.SparsityRecord)) - {"units"}  # unit runs only
    assert all(set(record) == declared for record in records.values())


def test_stop_then_resume_ends_with_the_same_metrics(reference, mnist_root, tmp_path):
    control = RunControl()
    seen = []

    def stop_in_round_one(event):
        if isinstance(event, Evaluated):
            seen.append(event.record)
            if event.record["round"] == 1 and event.record["iteration"] == 20:
                control.request_stop()

    run = new_run(tiny_config(mnist_root), tmp_path, "stopped")
    assert Experiment(run, stop_in_round_one, control).execute() == store.INTERRUPTED
    assert run.read_status().state == store.INTERRUPTED
    assert run.resume_checkpoint().exists()
    dense = run.segment_checkpoint(0, 0, "dense")  # finished before the stop: reloaded, not rerun
    state = store.load_checkpoint(dense)
    del state["result"]  # as an early prunetui wrote it: scored again from its rows
    store.save_checkpoint(state, dense)
    finished = []
    resumed = Experiment(run, lambda e: finished.append(e)).execute()
    assert resumed == store.FINISHED
    assert comparable(run) == comparable(reference)
    skipped = [e for e in finished if isinstance(e, SegmentFinished) and e.skipped]
    assert [(e.round, e.scheme) for e in skipped] == [(0, "dense")]
    scored = results.segment_results(reference.metrics())[0]
    assert (skipped[0].outcome.test_acc, skipped[0].outcome.early_stop_iteration) == \
        (scored.test_acc, scored.early_stop_iteration)


def test_resuming_a_finished_run_does_nothing(reference):
    before = reference.metrics_path.read_bytes()
    assert Experiment(reference).execute() == store.FINISHED
    assert reference.metrics_path.read_bytes() == before


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "prunetui", *args]


def wait_for_rows(path: Path, count: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= count:
            return
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.01)
    raise AssertionError("timed out waiting for metrics")


def kill_then_resume(run: store.RunDir, kill_after: range, kills: int,
                     *extra: str) -> None:
    """``prunetui run --resume`` on ``run``, killed with SIGKILL ``kills`` times, each after a
    random number of metric rows from ``kill_after`` and a random pause; then resumed to the
    end, which must succeed. The caller compares the metrics with an uninterrupted run."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = cli("run", "--resume", str(run.path), "--plain", *extra)
    rng = random.Random(os.getpid())
    for _ in range(kills):
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        wait_for_rows(run.metrics_path, rng.choice(kill_after), proc)
        time.sleep(rng.uniform(0, 0.3))
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        assert run.read_status().effective_state == store.INTERRUPTED
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def test_kill_9_at_any_moment_then_resume_gives_identical_metrics(mnist_full_root, tmp_path):
    # 90 iterations per segment = 9 epochs of 10 batches: many epoch checkpoints to land between.
    # All 10,000 test images: each evaluation lasts long enough for the kill to land mid-run.
    overrides = tiny_overrides(mnist_full_root, **{"train.iterations": 90, "prune.rounds": 1})
    cfg = config.apply_overrides(config.Config(), overrides)
    expected = comparable(run_to_end(cfg, tmp_path / "ref", "ref"))
    run = new_run(cfg, tmp_path, "killed")
    kill_then_resume(run, range(2, len(expected) - 4), 2)  # kill, resume, kill, resume to the end
    assert comparable(run) == expected
    assert run.read_status().state == store.FINISHED


def test_ctrl_c_checkpoints_and_exits_130(mnist_root, tmp_path):
    overrides = tiny_overrides(mnist_root, **{"train.iterations": 400})
    cfg = config.apply_overrides(config.Config(), overrides)
    run = new_run(cfg, tmp_path, "sigint")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cli("run", "--resume", str(run.path), "--plain"), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_rows(run.metrics_path, 3, proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "--resume" in out
    assert run.read_status().state == store.INTERRUPTED
    assert run.resume_checkpoint().exists()


def two_segment_run(root: Path, tmp_path: Path, name: str) -> tuple[store.RunDir, dict]:
    """A new run of two short segments, and the environment its CLI process needs."""
    cfg = config.apply_overrides(config.Config(), tiny_overrides(
        root, **{"train.iterations": 100, "prune.rounds": 1, "prune.schemes": ["rewind"]}))
    return new_run(cfg, tmp_path, name), {**os.environ, "PYTHONPATH": str(REPO)}


@pytest.mark.parametrize("stderr_too", [False, True])
def test_a_closed_output_pipe_checkpoints_and_stops_like_ctrl_c(mnist_root, tmp_path,
                                                                stderr_too):
    """``prunetui run ... | head`` (``2>&1 | head``: stderr too): the pipe closes mid-run. The
    run used to die as "failed" (Rich's SystemExit) in the middle of a segment; it must stop
    resumably instead."""
    run, env = two_segment_run(mnist_root, tmp_path, "piped")
    command = cli("run", "--resume", str(run.path), "--plain")
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True,
                            stderr=subprocess.STDOUT if stderr_too else subprocess.PIPE)
    assert "starting" in proc.stdout.readline()  # the first line, as head -1 reads it
    proc.stdout.close()
    err = "" if stderr_too else proc.stderr.read()
    assert proc.wait(60) == 130, err
    if not stderr_too:
        assert "Output closed" in err and "Traceback" not in err
        assert f"prunetui run --resume {run.path}" in err
    assert run.read_status().state == store.INTERRUPTED and run.resume_checkpoint().exists()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert run.read_status().state == store.FINISHED


@pytest.mark.parametrize("nohup", [False, True])
def test_a_hung_up_terminal_stops_the_run_resumably_unless_nohup(mnist_root, tmp_path, nohup):
    """SIGHUP (the SSH link or terminal went away) checkpoints and stops like Ctrl-C; under
    ``nohup`` (SIGHUP ignored) the run carries on to the end, as the user asked."""
    run, env = two_segment_run(mnist_root, tmp_path, "hup")

    def hangups() -> None:  # as nohup leaves them, or as a login shell does (the test itself
        # may run under nohup, whose SIG_IGN every child inherits)
        signal.signal(signal.SIGHUP, signal.SIG_IGN if nohup else signal.SIG_DFL)

    proc = subprocess.Popen(cli("run", "--resume", str(run.path), "--plain"), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=hangups)
    wait_for_rows(run.metrics_path, 2, proc)
    proc.send_signal(signal.SIGHUP)
    _, err = proc.communicate(timeout=120)
    if nohup:
        assert proc.returncode == 0, err
        assert run.read_status().state == store.FINISHED
    else:
        assert proc.returncode == 130, err
        assert run.read_status().state == store.INTERRUPTED and run.resume_checkpoint().exists()


def test_mask_from_rewind_shares_the_rewind_masks(mnist_root, tmp_path):
    cfg = tiny_config(mnist_root, **{"prune.mask_from": "rewind", "prune.rounds": 1,
                                     "prune.schemes": ["keep", "rewind", "random-mask"]})
    assert [s.scheme for s in plan(cfg)] == ["dense", "rewind", "keep", "random-mask"]
    run = run_to_end(cfg, tmp_path, "shared")

    def masks(scheme):
        return store.load_checkpoint(run.segment_checkpoint(0, 1, scheme))["masks"]

    rewind, keep, rand = masks("rewind"), masks("keep"), masks("random-mask")
    for name in rewind:
        assert torch.equal(rewind[name], keep[name])
        assert int(rand[name].sum()) == int(rewind[name].sum())
        assert not torch.equal(rand[name], rewind[name])


def test_scheme_start_weights_inside_the_loop(mnist_root):
    cfg = tiny_config(mnist_root, **{"prune.schemes": ["keep", "reinit", "rewind",
                                                       "rewind:20"]})
    layers = prunable_layers(LeNet300100())
    fresh = functools.partial(fresh_state, cfg.model, (784,), 10)
    theta0, trained, at_k = (fresh(s) for s in (1, 2, 3))
    rep = ReplicateState(0, 7, theta0, schemes=cfg.prune.schemes, rewind_points={20: at_k})
    rep.record("dense", trained, {layer.name: torch.ones_like(trained[layer.name])
                                  for layer in layers})
    starts = {s: segment_start(cfg, Segment(0, 1, s), rep, layers, fresh)
              for s in cfg.prune.schemes}
    for scheme, source in (("keep", trained), ("rewind", theta0), ("rewind:20", at_k)):
        weights, masks = starts[scheme]
        for name, mask in masks.items():
            alive = mask.bool()
            assert torch.equal(weights[name][alive], source[name][alive]), scheme
            assert torch.all(weights[name][~alive] == 0)
    reinit, masks = starts["reinit"]
    alive = masks["fc1.weight"].bool()
    for source in (theta0, trained):
        assert not torch.allclose(reinit["fc1.weight"][alive], source["fc1.weight"][alive])


def test_late_rewind_loads_the_weights_saved_at_iteration_k(mnist_root, tmp_path):
    cfg = tiny_config(mnist_root, **{"prune.schemes": ["rewind:20"], "prune.rounds": 1})
    run = run_to_end(cfg, tmp_path, "late")
    saved = store.load_checkpoint(run.replicate_dir(0) / "rewind-20.pt")["weights"]
    theta0 = store.load_checkpoint(run.replicate_dir(0) / "init.pt")["theta0"]
    dense = store.load_checkpoint(run.segment_checkpoint(0, 0, "dense"))["weights"]
    assert not torch.equal(saved["fc1.weight"], theta0["fc1.weight"])
    assert not torch.equal(saved["fc1.weight"], dense["fc1.weight"])


def test_replicates_are_aggregated(mnist_root, tmp_path):
    from prunetui.results import round_results

    cfg = tiny_config(mnist_root, **{"train.replicates": 2, "prune.rounds": 1,
                                     "prune.schemes": ["rewind"]})
    run = run_to_end(cfg, tmp_path, "reps")
    rows = round_results(run.metrics())
    assert [(r.round, r.scheme, r.replicates) for r in rows] == [(0, "dense", 2),
                                                                  (1, "rewind", 2)]
    assert rows[1].test_acc_std > 0
