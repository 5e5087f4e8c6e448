"""How far a sweep is: each run's state and progress, and the sweep's row in runs lists.

Read from the runs' stores only: the runs train in other processes, possibly on other machines.
"""

from __future__ import annotations

from prunetui import config, results, store
from prunetui.segments import segment_count
from prunetui.sweep.compare import comparison
from prunetui.sweep.folder import SweepDir

_summaries: dict[str, tuple[tuple, dict[str, str]]] = {}


def sweep_signature(sweep: SweepDir) -> tuple:
    """Changes whenever the sweep's record or a run's metrics or status changes."""
    return store.files_signature([sweep.record_path] + [
        r.path / f for r in sweep.runs() for f in (store.METRICS_FILE, store.STATUS_FILE)])


def sweep_summary(sweep: SweepDir) -> dict[str, str]:
    """:func:`summarize`, recomputed only when a file of the sweep changed (lists refresh often)."""
    key, sig = str(sweep.path), sweep_signature(sweep)
    cached = _summaries.get(key)
    if cached is None or cached[0] != sig:
        cached = _summaries[key] = (sig, summarize(sweep))
    return dict(cached[1])


def run_states(sweep: SweepDir) -> list[str]:
    """Each run's state, ``waiting`` before its first start and ``missing`` without a folder."""
    return [("missing" if not r.exists() else "waiting" if not r.status_path.exists()
             else r.read_status().effective_state) for r in sweep.runs()]


def summarize(sweep: SweepDir) -> dict[str, str]:
    """One row of a runs list for a whole sweep (same keys as results.run_summary_checked)."""
    runs = sweep.runs()
    states = run_states(sweep)
    counts = {s: states.count(s) for s in dict.fromkeys(states)}
    state = (store.RUNNING if counts.get(store.RUNNING) else
             store.FINISHED if counts.get(store.FINISHED) == len(runs) else store.INTERRUPTED)
    best = max(comparison(sweep), key=lambda r: (r.round > 0, r.mean), default=None)
    return {
        "name": f"{sweep.name}/",
        "status": state,
        "dataset": f"sweep of {len(runs)} runs",
        "schemes": ", ".join(f"{n} {s}" for s, n in counts.items()),
        "rounds": f"{counts.get(store.FINISHED, 0)}/{len(runs)} done",
        "dense": "-",
        "best": (f"{100 * best.mean:.2f}% ({best.setting}, {best.scheme}, "
                 f"{100 * best.remaining:.1f}% left)" if best and best.round > 0 else "-"),
    }


class SweepRunProgress:
    """How far one run of a sweep is, read from its run store (it trains in another process):
    finished segments of all it plans, and its latest evaluation."""

    def __init__(self, run: store.RunDir) -> None:
        self.run = run
        self.tail = store.JsonlTail(run.metrics_path)
        self.last: store.MetricRow | None = None
        self.done, self.active = 0, False
        try:
            self.total = segment_count(run.config())
        except config.ConfigError:
            self.total = 0

    def poll(self) -> None:
        rows = self.tail.read_new()
        if rows:
            self.last = rows[-1]
        self.done = len(self.run.final_checkpoints())
        self.active = self.run.read_status().effective_state == store.RUNNING

    def info(self) -> str:
        r = self.last
        if r is None:
            return "starting"
        label = results.segment_label(*store.segment_key(r))
        return f"{label} it {r['iteration']}: test {100 * r['test_acc']:.2f}%"
