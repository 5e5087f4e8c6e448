"""CPU threads and OpenMP waiting for training, fitted to where the engine runs.

PyTorch's CPU kernels run on OpenMP threads (libgomp). Two settings decide their speed:

- *Waiting*. Between kernels libgomp threads spin before they sleep. Spinning is fastest on an
  idle machine, but a spinning thread that shares its core with another busy process starves
  (a LeNet epoch took 158 s instead of 1.4 s); passive waiting (no spin at all) made every step
  2.5x slower on an idle machine. A moderate spin count (:data:`SPIN_COUNT`) keeps most of the
  idle speed and gives the core back soon. It is read once, when torch loads, so
  :func:`set_wait_policy` runs on ``import prunetui``; a user's own OMP_WAIT_POLICY or
  GOMP_SPINCOUNT wins.
- *Thread count*. Fitted, when a run starts, to the cores this process may use minus those
  kept busy by other processes (:func:`sample_cores`): beside a busy process a run takes one
  thread and never spins against it. ``train.threads`` or OMP_NUM_THREADS choose it explicitly.
  The count can change float sums, so it is recorded in the run directory (``runtime.json``)
  and a resumed run reuses it.

Nothing here imports torch at module level: face preparation and the app use these helpers
before (or without) loading it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# libgomp spins this many times before it sleeps (its default is 300,000; PASSIVE is 0).
SPIN_COUNT = "10000"
WAIT_ENV = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
SAMPLE_SECONDS = 0.1  # 10 ticks per core at USER_HZ 100: enough for a 60% threshold
# Another process counts as holding a core once it keeps it busy 60% of the time.
BUSY_CORE_THRESHOLD = 0.6


def set_wait_policy(environ: MutableMapping[str, str] = os.environ) -> None:
    """Set a moderate libgomp spin count unless the user chose a wait policy (before torch)."""
    if "OMP_WAIT_POLICY" not in environ and "GOMP_SPINCOUNT" not in environ:
        environ["GOMP_SPINCOUNT"] = SPIN_COUNT


def wait_env(environ: Mapping[str, str] = os.environ) -> dict[str, str | None]:
    """The OpenMP / MKL variables as this process sees them (None = unset)."""
    return {name: environ.get(name) for name in WAIT_ENV}


# ---------------------------------------------------------------------------- free cores


def parse_proc_stat(text: str) -> dict[int, tuple[int, int]]:
    """Per-CPU (busy, total) ticks from /proc/stat (idle and iowait are not busy)."""
    cpus = {}
    for line in text.splitlines():
        name, *fields = line.split()
        if not name.startswith("cpu") or name == "cpu":
            continue
        ticks = [int(f) for f in fields[:8]]  # user nice system idle iowait irq softirq steal
        total = sum(ticks)
        cpus[int(name[3:])] = (total - ticks[3] - ticks[4], total)
    return cpus


def parse_own_ticks(text: str) -> int:
    """utime + stime (all threads) from /proc/<pid>/stat; the name may hold spaces and ')'."""
    fields = text.rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def busy_other_cores(before: Mapping[int, tuple[int, int]], after: Mapping[int, tuple[int, int]],
                     cpus: set[int], own_ticks: int) -> float:
    """Cores' worth of time that *other* processes used on ``cpus`` between two samples."""
    cpus = {c for c in cpus if c in before and c in after}
    if not cpus:
        return 0.0
    busy = sum(after[c][0] - before[c][0] for c in cpus) - own_ticks
    per_core = sum(after[c][1] - before[c][1] for c in cpus) / len(cpus)
    return max(0.0, busy / per_core) if per_core > 0 else 0.0


def fit_threads(allowed: int, busy_other: float) -> int:
    """Threads for ``allowed`` cores of which ``busy_other`` cores' worth are used elsewhere."""
    busy = int(busy_other + 1 - BUSY_CORE_THRESHOLD)  # 0.59 -> 0, 0.6 -> 1, 1.6 -> 2
    return max(1, allowed - busy)


def allowed_cpus() -> set[int]:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return set(range(os.cpu_count() or 1))


@dataclass(frozen=True)
class CoreSample:
    allowed: int
    busy_other: float | None  # None where /proc cannot be read

    @property
    def free(self) -> int:
        return self.allowed if self.busy_other is None else fit_threads(self.allowed,
                                                                        self.busy_other)


def _read(path: str) -> str:
    with open(path) as fh:
        return fh.read()


def sample_cores(seconds: float = SAMPLE_SECONDS, read: Callable[[str], str] = _read,
                 sleep: Callable[[float], None] = time.sleep) -> CoreSample:
    """Cores this process may use and how busy other processes keep them, over ``seconds``."""
    cpus = allowed_cpus()
    try:
        stat0, own0 = parse_proc_stat(read("/proc/stat")), parse_own_ticks(read("/proc/self/stat"))
        sleep(seconds)
        stat1, own1 = parse_proc_stat(read("/proc/stat")), parse_own_ticks(read("/proc/self/stat"))
    except (OSError, ValueError, IndexError):
        return CoreSample(len(cpus), None)
    return CoreSample(len(cpus), round(busy_other_cores(stat0, stat1, cpus, own1 - own0), 2))


# ---------------------------------------------------------------------------- the choice


@dataclass(frozen=True)
class ThreadChoice:
    threads: int
    source: str  # "recorded" (resume) | "config" | "environment" | "auto"
    allowed_cores: int
    busy_other_cores: float | None = None  # measured only for "auto"

    def describe(self) -> str:
        if self.source == "auto":
            busy = ("" if self.busy_other_cores is None
                    else f", {self.busy_other_cores:g} busy with other processes")
            how = f"auto: {self.allowed_cores} cores{busy}"
        else:
            how = {"recorded": "kept from the run's first start", "config": "train.threads",
                   "environment": "OMP_NUM_THREADS"}[self.source]
        return f"{self.threads} CPU thread{'s' if self.threads != 1 else ''} ({how})"


def env_threads(environ: Mapping[str, str] = os.environ) -> int | None:
    """A thread count the user set in OMP_NUM_THREADS (first level of a list), else None."""
    value = environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def choose(requested: int, recorded: int | None = None,
           environ: Mapping[str, str] = os.environ,
           sample: Callable[[], CoreSample] | None = None) -> ThreadChoice:
    """Recorded count (resume) > ``train.threads`` > OMP_NUM_THREADS > free cores now."""
    allowed = len(allowed_cpus())
    if recorded:
        return ThreadChoice(recorded, "recorded", allowed)
    if requested > 0:
        return ThreadChoice(requested, "config", allowed)
    if (env := env_threads(environ)) is not None:
        return ThreadChoice(env, "environment", allowed)
    cores = (sample or sample_cores)()
    return ThreadChoice(cores.free, "auto", cores.allowed, cores.busy_other)


def apply(choice: ThreadChoice) -> None:
    """Use ``choice.threads`` for torch's CPU kernels (process-wide, also MKL)."""
    import torch

    if torch.get_num_threads() != choice.threads:
        torch.set_num_threads(choice.threads)


# ---------------------------------------------------------------------------- the record


def read_recorded(run_path: Path) -> int | None:
    """The thread count a run directory recorded on its first start, or None."""
    from prunetui.store.runtime import read_runtime  # not on import prunetui: the store is heavier

    threads = read_runtime(run_path).get("threads")
    return threads if isinstance(threads, int) and threads > 0 else None


def read_recorded_precision(run_path: Path) -> str | None:
    """The training precision a run directory recorded on its first start, or None (a run
    from before precisions were recorded trained in fp32, its config's only choice then)."""
    from prunetui.store.runtime import read_runtime

    precision = read_runtime(run_path).get("precision")
    return precision if isinstance(precision, str) else None


def start_run(run_path: Path, requested: int, device: str,
              extra: Mapping[str, Any] | None = None) -> ThreadChoice:
    """Choose and apply the threads of a run starting or resuming in ``run_path``; record them
    in its runtime.json (with ``extra``: the training precision)."""
    import torch

    from prunetui.store.runtime import RuntimeRecord, write_runtime

    choice = choose(requested, read_recorded(run_path))
    apply(choice)
    record: RuntimeRecord = {  # type: ignore[typeddict-item]
        **asdict(choice), "openmp_env": wait_env(), "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(), "device": device, **(extra or {})}
    write_runtime(run_path, record)
    return choice


def wait_policy_label(environ: Mapping[str, str] = os.environ) -> str:
    """The OpenMP waiting in force, e.g. 'GOMP_SPINCOUNT=10000' (for first lines and logs)."""
    parts = [f"{k}={environ[k]}" for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT") if k in environ]
    return ", ".join(parts) or "OpenMP default waiting"
