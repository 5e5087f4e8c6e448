"""CPU threads and OpenMP waiting (prunetui.threads): the policy from fake /proc numbers, the
record in the run directory, resume reusing it, and identical numbers under it."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch
from rich.console import Console

from prunetui import config, store, threads
from prunetui.cli.render import PlainRunView
from prunetui.control import RunControl
from prunetui.events import Evaluated, RunStarted
from prunetui.experiment import Experiment
from prunetui.store import new_run
from tests.conftest import tiny_overrides

STAT = """cpu  300 0 100 500 0 0 0 0 0 0
cpu0 {a} 0 0 {ia} 0 0 0 0 0 0
cpu1 {b} 0 0 {ib} 0 0 0 0 0 0
intr 1 2 3
"""


def stat(a: int, ia: int, b: int, ib: int) -> str:
    return STAT.format(a=a, ia=ia, b=b, ib=ib)


def own(utime: int, stime: int) -> str:
    return f"42 (py (x) y) R 1 1 1 0 -1 0 0 0 0 0 {utime} {stime} 0 0 20 0 3 0"


def test_parse_proc_stat_and_own_ticks():
    assert threads.parse_proc_stat(stat(10, 90, 30, 70)) == {0: (10, 100), 1: (30, 100)}
    assert threads.parse_own_ticks(own(7, 5)) == 12


@pytest.mark.parametrize(("before", "after", "own_ticks", "busy"), [
    ((0, 0, 0, 0), (0, 20, 0, 20), 0, 0.0),       # idle machine
    ((0, 0, 0, 0), (20, 0, 0, 20), 0, 1.0),       # one core busy with another process
    ((0, 0, 0, 0), (20, 0, 0, 20), 20, 0.0),      # ... with this process: not "other"
    ((0, 0, 0, 0), (20, 0, 10, 10), 0, 1.5),      # one and a half
    ((0, 0, 0, 0), (20, 0, 20, 0), 0, 2.0),
])
def test_busy_other_cores(before, after, own_ticks, busy):
    b, a = threads.parse_proc_stat(stat(*before)), threads.parse_proc_stat(stat(*after))
    assert threads.busy_other_cores(b, a, {0, 1}, own_ticks) == pytest.approx(busy)


def test_busy_other_cores_counts_only_allowed_cpus():
    b = threads.parse_proc_stat(stat(0, 0, 0, 0))
    a = threads.parse_proc_stat(stat(0, 20, 20, 0))
    assert threads.busy_other_cores(b, a, {0}, 0) == 0.0
    assert threads.busy_other_cores(b, a, {1}, 0) == 1.0


@pytest.mark.parametrize(("allowed", "busy", "expected"), [
    (2, 0.0, 2), (2, 0.5, 2), (2, 0.7, 1), (2, 1.0, 1), (2, 2.0, 1), (16, 3.2, 13), (1, 0.0, 1),
])
def test_fit_threads_leaves_the_busy_cores_and_keeps_one(allowed, busy, expected):
    assert threads.fit_threads(allowed, busy) == expected


def test_sample_cores_reads_proc_twice_and_subtracts_own_time(monkeypatch):
    monkeypatch.setattr(threads, "allowed_cpus", lambda: {0, 1})
    files = {"/proc/stat": [stat(0, 0, 0, 0), stat(20, 0, 5, 15)],
             "/proc/self/stat": [own(0, 0), own(5, 0)]}
    slept = []
    sample = threads.sample_cores(0.2, read=lambda path: files[path].pop(0), sleep=slept.append)
    assert slept == [0.2]
    assert sample == threads.CoreSample(2, 1.0)  # 25 busy ticks, 5 of them ours
    assert sample.free == 1


def test_sample_cores_without_proc_uses_every_allowed_core(monkeypatch):
    monkeypatch.setattr(threads, "allowed_cpus", lambda: {0, 1, 2})

    def unreadable(path):
        raise OSError(path)

    sample = threads.sample_cores(0.0, read=unreadable, sleep=lambda s: None)
    assert sample == threads.CoreSample(3, None) and sample.free == 3


def test_choose_precedence():
    busy = lambda: threads.CoreSample(4, 1.0)  # noqa: E731
    env = {"OMP_NUM_THREADS": "3"}
    assert threads.choose(0, recorded=2, environ=env, sample=busy).source == "recorded"
    assert threads.choose(5, None, env, busy) == threads.ThreadChoice(
        5, "config", len(threads.allowed_cpus()))
    assert threads.choose(0, None, env, busy).threads == 3
    auto = threads.choose(0, None, {"OMP_NUM_THREADS": "x"}, busy)
    assert (auto.threads, auto.source, auto.busy_other_cores) == (3, "auto", 1.0)
    assert "auto: 4 cores, 1 busy" in auto.describe()


def test_wait_policy_is_a_moderate_spin_unless_the_user_chose():
    env: dict[str, str] = {}
    threads.set_wait_policy(env)
    assert env == {"GOMP_SPINCOUNT": threads.SPIN_COUNT}
    for mine in ({"OMP_WAIT_POLICY": "PASSIVE"}, {"GOMP_SPINCOUNT": "0"}):
        env = dict(mine)
        threads.set_wait_policy(env)
        assert env == mine
    assert threads.wait_policy_label({"OMP_WAIT_POLICY": "ACTIVE"}) == "OMP_WAIT_POLICY=ACTIVE"


def test_read_recorded_ignores_missing_or_bad_files(tmp_path):
    assert threads.read_recorded(tmp_path) is None
    (tmp_path / store.RUNTIME_FILE).write_text("{not json")
    assert threads.read_recorded(tmp_path) is None
    (tmp_path / store.RUNTIME_FILE).write_text(json.dumps({"threads": 0}))
    assert threads.read_recorded(tmp_path) is None
    (tmp_path / store.RUNTIME_FILE).write_text(json.dumps({"threads": 3}))
    assert threads.read_recorded(tmp_path) == 3


# ------------------------------------------------------------------ in a real run


@pytest.fixture
def restore_torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def tiny(root: Path, **extra) -> config.Config:
    extra = {"prune.rounds": 1, "prune.schemes": ["rewind"], "train.threads": 0, **extra}
    return config.apply_overrides(config.Config(), tiny_overrides(root, **extra))


def comparable(run: store.RunDir) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "elapsed_s"} for row in run.metrics()]


def test_auto_run_records_its_threads_and_a_resume_reuses_them(
        mnist_root, tmp_path, monkeypatch, restore_torch_threads):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "sample_cores", lambda: threads.CoreSample(2, 0.0))
    expected = new_run(tiny(mnist_root, **{"train.threads": 2}), tmp_path, "explicit")
    assert Experiment(expected).execute() == store.FINISHED

    run = new_run(tiny(mnist_root), tmp_path, "auto")
    control, started, used = RunControl(), [], []

    def stop_in_round_one(event):
        if isinstance(event, RunStarted):
            started.append(event)
        if isinstance(event, Evaluated):
            used.append(torch.get_num_threads())
            if event.record["round"] == 1 and event.record["iteration"] == 20:
                control.request_stop()

    torch.set_num_threads(1)
    assert Experiment(run, stop_in_round_one, control).execute() == store.INTERRUPTED
    record = json.loads((run.path / store.RUNTIME_FILE).read_text())
    assert (record["threads"], record["source"], record["busy_other_cores"]) == (2, "auto", 0.0)
    assert record["torch"] == torch.__version__ and record["device"] == "cpu"
    assert record["openmp_env"]["OMP_NUM_THREADS"] is None
    assert started[0].threads == 2 and "2 CPU threads (auto: 2 cores" in started[0].cpu

    # Now the machine looks busy and the user sets OMP_NUM_THREADS: the resume keeps 2.
    monkeypatch.setattr(threads, "sample_cores", lambda: threads.CoreSample(2, 2.0))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    assert Experiment(run, stop_in_round_one).execute() == store.FINISHED
    assert set(used) == {2}
    assert started[1].threads == 2 and "kept from the run's first start" in started[1].cpu
    assert threads.read_recorded(run.path) == 2
    assert comparable(run) == comparable(expected)


def test_one_thread_run_trains_on_one_thread(mnist_root, tmp_path, monkeypatch,
                                             restore_torch_threads):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    torch.set_num_threads(2)
    used = []
    run = new_run(tiny(mnist_root, **{"train.threads": 1, "prune.rounds": 0}), tmp_path, "one")
    Experiment(run, lambda e: used.append(torch.get_num_threads())).execute()
    assert set(used) == {1}
    assert threads.read_recorded(run.path) == 1


def test_plain_view_prints_the_cpu_setting_in_its_first_lines():
    out = io.StringIO()
    view = PlainRunView(Console(file=out, width=200))
    view(RunStarted("models/x", "x", "mnist", "lenet-300-100", ("rewind",), 1, 1, 100, 50, "cpu",
                    threads=2, cpu="2 CPU threads (auto: 2 cores), GOMP_SPINCOUNT=10000"))
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[1].endswith("2 CPU threads (auto: 2 cores), "
                                                 "GOMP_SPINCOUNT=10000")
