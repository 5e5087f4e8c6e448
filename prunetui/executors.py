"""Where the runs of a sweep execute: local worker processes (default) or Ray tasks.

Both start the same command for a run, ``python -m prunetui run --resume RUN_DIR --plain``, in
its own process with its share of the CPU threads, so one run's numbers do not depend on the
executor. Fault tolerance is the run store's: a run whose process dies is started again and
resumes from its last checkpoint; a finished run is never started again.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from prunetui import store
from prunetui.detach import LOG_FILE, start_run_process
from prunetui.exitcodes import EXIT_USAGE

POLL_S = 0.5
DEFAULT_RETRIES = 2
FINISHED_ALREADY, RUNNING_ELSEWHERE = "finished already", "running in another process"


@dataclass(frozen=True)
class Launched:
    name: str
    pid: int  # 0 for a Ray task (its process starts on whichever node Ray picks)
    attempt: int  # 1 for the first start


@dataclass(frozen=True)
class Retrying:
    name: str
    attempt: int  # the attempt that died
    reason: str


@dataclass(frozen=True)
class Skipped:
    name: str
    reason: str


@dataclass(frozen=True)
class RunEnded:
    name: str
    state: str  # finished | interrupted | failed
    message: str = ""


SweepEvent = Launched | Retrying | Skipped | RunEnded
Sink = Callable[[SweepEvent], None]


def _ignore(event: SweepEvent) -> None:
    pass


class RunDied(RuntimeError):
    """A run's process ended before the run finished (killed, crashed): worth a retry."""


# ---------------------------------------------------------------------------------------------
# One run in its own process


def child_env(threads: int, gpu: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    # train.threads holds the same number; the variable also covers libraries torch loads.
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    # MKL may otherwise run a call on fewer threads than asked, which changes float sums.
    env.setdefault("MKL_DYNAMIC", "FALSE")
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    return env


try:  # looked up here: a child between fork and exec must not dlopen (locks of other threads)
    _PRCTL = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux
    _PRCTL = None


def _die_with_parent() -> None:
    """In the child: get SIGTERM (checkpoint and stop) when the process that started it dies,
    so a killed driver or Ray worker leaves interrupted runs, not orphans still training."""
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def launch(run_dir: Path, threads: int, gpu: str | None = None,
           cwd: str | None = None) -> subprocess.Popen:
    """Start one run as a detached run would start, with its CPU share and, should this driver
    die, SIGTERM. Its own session: a Ctrl-C in the terminal reaches the driver only, which then
    stops each run once (a second SIGINT would skip the run's checkpoint)."""
    return start_run_process(run_dir, env=child_env(threads, gpu), cwd=cwd,
                             preexec_fn=_die_with_parent)


def outcome(run_dir: Path, returncode: int) -> str:
    """The run's state after its process ended; raises RunDied when a retry may help."""
    status = store.RunDir(run_dir).read_status()
    if status.state == store.FINISHED:
        return store.FINISHED
    if returncode == EXIT_USAGE:
        return store.FAILED
    raise RunDied(f"{run_dir} stopped before finishing (exit code {returncode}, state "
                  f"{status.effective_state}).")


def startable(run_dir: Path) -> str | None:
    """Why a run is not to be started (finished, or running in another process), or None."""
    state = store.RunDir(run_dir).read_status().effective_state
    if state == store.FINISHED:
        return FINISHED_ALREADY
    if state == store.RUNNING:
        return RUNNING_ELSEWHERE
    return None


# ---------------------------------------------------------------------------------------------
# Local worker processes


@dataclass
class _Active:
    run: Path
    proc: subprocess.Popen
    attempt: int
    gpu: str | None


class LocalExecutor:
    """At most ``workers`` runs at a time, each in its own process with ``threads`` threads."""

    def __init__(self, workers: int, threads: int, gpus: list[str] | None = None,
                 retries: int = DEFAULT_RETRIES) -> None:
        self.workers, self.threads = max(1, workers), max(1, threads)
        self.gpus, self.retries = gpus or [], retries
        self.stop = threading.Event()

    def run(self, run_dirs: list[Path], on_event: Sink = _ignore,
            on_tick: Callable[[], None] | None = None) -> dict[str, str]:
        """Run every run to its end; returns run name -> final state."""
        states: dict[str, str] = {}
        pending: deque[tuple[Path, int]] = deque()
        for run in run_dirs:
            reason = startable(run)
            if reason:
                on_event(Skipped(run.name, reason))
                states[run.name] = store.RunDir(run).read_status().effective_state
            else:
                pending.append((run, 1))
        active: list[_Active] = []
        try:
            while pending or active:
                while pending and len(active) < self.workers and not self.stop.is_set():
                    run, attempt = pending.popleft()
                    gpu = self._free_gpu(active)
                    proc = launch(run, self.threads, gpu)
                    active.append(_Active(run, proc, attempt, gpu))
                    on_event(Launched(run.name, proc.pid, attempt))
                if self.stop.is_set():
                    self._stop_all(active)
                    pending.clear()
                time.sleep(POLL_S)
                for job in [j for j in active if j.proc.poll() is not None]:
                    active.remove(job)
                    self._ended(job, states, pending, on_event)
                if on_tick:
                    on_tick()
        except BaseException:
            self._stop_all(active)  # Ctrl-C or an error in the driver: checkpoint every run
            for job in active:
                job.proc.wait()
            raise
        return states

    def _free_gpu(self, active: list[_Active]) -> str | None:
        if not self.gpus:
            return None
        used = [j.gpu for j in active]
        return min(self.gpus, key=used.count)

    def _ended(self, job: _Active, states: dict[str, str],
               pending: deque[tuple[Path, int]], on_event: Sink) -> None:
        name, code = job.run.name, job.proc.returncode
        try:
            state = outcome(job.run, code)
        except RunDied as died:
            if self.stop.is_set():
                state = store.INTERRUPTED
            elif job.attempt <= self.retries:
                on_event(Retrying(name, job.attempt, str(died)))
                pending.appendleft((job.run, job.attempt + 1))
                return
            else:
                state = store.FAILED
        message = "" if state == store.FINISHED else store.RunDir(job.run).read_status().message
        states[name] = state
        on_event(RunEnded(name, state, message or f"exit code {code}, see "
                          f"{job.run / LOG_FILE}" if state != store.FINISHED else ""))

    def _stop_all(self, active: list[_Active]) -> None:
        for job in active:
            if job.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    job.proc.send_signal(signal.SIGINT)  # the run checkpoints and exits 130


# ---------------------------------------------------------------------------------------------
# Ray


def ray_task(run_dir: str, threads: int, cwd: str) -> str:
    """Body of one Ray task: the run in a child process; RunDied makes Ray retry it."""
    path = Path(run_dir)
    if not store.RunDir(path).exists():
        import socket

        raise FileNotFoundError(
            f"{run_dir} is not visible on Ray node {socket.gethostname()}: the runs folder must "
            "be on a filesystem every node mounts at the same path.")
    if startable(path) == FINISHED_ALREADY:
        return store.FINISHED
    gpu = os.environ.get("CUDA_VISIBLE_DEVICES")  # Ray sets it for tasks that asked for a GPU
    proc = launch(path, threads, gpu, cwd=cwd if Path(cwd).is_dir() else None)
    try:
        code = proc.wait()
    except BaseException:  # cancelled by the driver: let the run checkpoint
        proc.send_signal(signal.SIGINT)
        proc.wait()
        raise
    return outcome(path, code)


class RayExecutor:
    """Each run is a Ray task on an existing cluster (``address``), or on a local Ray instance.

    A task asks for ``gpus_per_run`` GPUs when the cluster has GPUs (fractions share one), and
    for ``threads`` CPUs otherwise. Ray retries a task whose run died (``retries`` times); the
    retry resumes from the run's last checkpoint. Ray is an optional extra: prunetui[ray].
    """

    def __init__(self, address: str | None, threads: int, gpus_per_run: float = 1.0,
                 retries: int = DEFAULT_RETRIES, init_kwargs: dict | None = None) -> None:
        self.address, self.threads = address, max(1, threads)
        self.gpus_per_run, self.retries = gpus_per_run, retries
        self.init_kwargs = init_kwargs or {}
        self.started_s = 0.0  # seconds spent in ray.init (start-up overhead)

    def connect(self):
        import ray

        if not ray.is_initialized():
            began = time.monotonic()
            kwargs = {"include_dashboard": False, "log_to_driver": False,
                      "configure_logging": False, **self.init_kwargs}
            ray.init(address=self.address or None, **kwargs)
            self.started_s = time.monotonic() - began
        return ray

    def task_options(self, ray) -> dict:
        if ray.cluster_resources().get("GPU", 0) > 0:
            return {"num_gpus": self.gpus_per_run, "num_cpus": 1}
        # A task asking for more CPUs than any node has would wait forever.
        largest = max((n["Resources"].get("CPU", 0) for n in ray.nodes() if n.get("Alive")),
                      default=1)
        return {"num_cpus": max(1, min(self.threads, int(largest)))}

    def run(self, run_dirs: list[Path], on_event: Sink = _ignore,
            on_tick: Callable[[], None] | None = None) -> dict[str, str]:
        ray = self.connect()
        remote = ray.remote(ray_task).options(
            max_retries=self.retries, retry_exceptions=[RunDied], **self.task_options(ray))
        states: dict[str, str] = {}
        refs = {}
        for run in run_dirs:
            reason = startable(run)
            if reason:
                on_event(Skipped(run.name, reason))
                states[run.name] = store.RunDir(run).read_status().effective_state
                continue
            ref = remote.remote(str(run.resolve()), self.threads, os.getcwd())
            refs[ref] = run
            on_event(Launched(run.name, 0, 1))
        try:
            while refs:
                ready, _ = ray.wait(list(refs), num_returns=1, timeout=POLL_S)
                for ref in ready:
                    run = refs.pop(ref)
                    try:
                        state, message = ray.get(ref), ""
                    except (ray.exceptions.RayError, RunDied) as err:
                        state, message = store.FAILED, str(err).strip().splitlines()[-1]
                    states[run.name] = state
                    on_event(RunEnded(run.name, state, message))
                if on_tick:
                    on_tick()
        except BaseException:
            for ref in refs:
                with contextlib.suppress(Exception):
                    ray.cancel(ref)  # KeyboardInterrupt in the task: the run checkpoints
            raise
        return states


def gpu_count() -> int:
    """GPUs this machine has (torch is imported: only the sweep driver calls this)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0
