"""The real app in a real terminal (tmux): an SSH drop (SIGHUP) checkpoints an in-app run, and
the run then resumes to the same numbers as one that was never interrupted."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid

import pytest

from prunetui import config, store
from prunetui.experiment import Experiment
from prunetui.store import new_run
from tests.conftest import REPO, tiny_overrides

pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None and os.environ.get("PRUNETUI_REQUIRE_DATA") != "1",
    reason="tmux is not installed")


def tmux(socket: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["tmux", "-L", socket, *args], capture_output=True, text=True,
                          timeout=30)


def wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_sighup_checkpoints_an_in_app_run_that_then_resumes_exactly(mnist_root, tmp_path):
    # 2 segments of 600 iterations, 24 evaluations: the hangup comes after the first one, with
    # 1,150 iterations left (seconds, even on an idle machine), and the run is short enough
    # to train twice more (the resume and the reference).
    overrides = tiny_overrides(mnist_root, **{
        "train.iterations": 600, "train.eval_every": 50, "prune.rounds": 1,
        "prune.schemes": ["rewind"]})
    cfg = config.apply_overrides(config.Config(), overrides)
    models = tmp_path / "models"
    run = new_run(cfg, models, "hup")  # never started: the Runs screen offers to resume it
    socket = f"prunetui-test-{uuid.uuid4().hex[:8]}"
    env = f"env TERM=xterm-256color PYTHONPATH={REPO}"
    command = f"{env} {sys.executable} -m prunetui --models {models} --data-root {mnist_root}"
    assert tmux(socket, "new-session", "-d", "-x", "80", "-y", "24", command).returncode == 0
    try:
        wait(lambda: "hup" in tmux(socket, "capture-pane", "-p").stdout, 30, "the Runs screen")
        tmux(socket, "send-keys", "r")  # resume the selected run inside the app
        wait(lambda: len(run.metrics()) >= 1, 120, "the run to train in the app")
    finally:
        tmux(socket, "kill-server")  # the terminal goes away: the app gets SIGHUP
    wait(lambda: run.read_status().state == store.INTERRUPTED, 30, "the checkpoint on SIGHUP")
    assert run.resume_checkpoint().exists()
    rows_at_hangup = len(run.metrics())
    assert rows_at_hangup < 24  # stopped part-way, not finished

    assert Experiment(run).execute() == store.FINISHED
    reference = new_run(cfg, tmp_path / "ref", "ref")
    assert Experiment(reference).execute() == store.FINISHED

    def rows(r: store.RunDir) -> list[dict]:
        return [{k: v for k, v in row.items() if k != "elapsed_s"} for row in r.metrics()]

    assert rows(run) == rows(reference)
