"""The Runs screen's list: every run folder under the models folder (damaged ones too), and
one row per run (``results.run_summary_checked``, shared with ``prunetui runs``) that names
whatever is damaged and never raises. Pure Python: no Textual, no torch.
"""

from __future__ import annotations

from pathlib import Path

from prunetui import results, store
from prunetui.app.damage import config_problem, describe_problems
from prunetui.app.rundata import RunData
from prunetui.store import LineProblem, MetricRow, RunDir
from prunetui.store.status import DAMAGED_MESSAGE

RUN_FILES = (store.CONFIG_FILE, store.STATUS_FILE, store.METRICS_FILE, store.SPARSITY_FILE,
             store.CHECKPOINT_DIR)


def list_run_dirs(models_dir: str | Path) -> list[RunDir]:
    """``store.list_runs``, plus folders that lost their config.toml but hold other run files:
    a damaged run is listed (and named as such), never hidden. Newest first."""
    try:
        folders = [p for p in Path(models_dir).iterdir() if p.is_dir()]
    except OSError:
        return []
    found = []
    for folder in folders:
        for name in RUN_FILES:  # config.toml first: its time orders the runs, as list_runs
            try:
                found.append(((folder / name).stat().st_mtime, RunDir(folder)))
                break
            except OSError:
                continue
    return [run for _, run in sorted(found, key=lambda f: f[0], reverse=True)]


class _FoldedRun(RunDir):
    """The RunDir ``results.run_summary_checked`` reads: its metrics come from a results-only
    RunData, read a chunk at a time and incrementally, folded to the rows that decide each
    segment's result: the same summary at a fraction of the cost."""

    def __init__(self, data: RunData) -> None:
        super().__init__(data.run.path)
        self.data = data
        self.error = ""  # the metrics could not be read at all

    def metrics_checked(self) -> tuple[list[MetricRow], list[LineProblem]]:
        update = self.data.read()
        self.data.apply(update)
        self.error = update.error if update else ""
        return self.data.decisive_rows(), self.data.problems


def runs_row(run: RunDir, folded: dict[str, RunData] | None = None) -> dict[str, str]:
    """The Runs screen's row for ``run``: ``results.run_summary_checked``, a ``warning`` and a
    ``structure`` label (``units`` for unit pruning, else ""), whatever the damage (it never
    raises).

    ``warning`` names what is damaged ("" when nothing): lines skipped (file and line, in
    either JSON-lines file), files that cannot be read. ``folded`` keeps what was read of each
    run between calls, so a growing run is read from where the last call stopped.
    """
    data = folded.get(str(run.path)) if folded is not None else None
    if data is None:
        data = RunData(run, curves=False)
        if folded is not None:
            folded[str(run.path)] = data
    warnings, problems, folded_run = [], [], _FoldedRun(data)
    try:
        with data.lock:  # a scan started while another still reads waits for it
            summary, problems = results.run_summary_checked(folded_run)
            problems = list(problems)
    except Exception as err:  # one damaged run must never hide the others
        summary = {"name": run.name, "status": run.read_status().effective_state,
                   "dataset": "?", "schemes": "?", "rounds": "?", "dense": "-", "best": "-",
                   "structure": ""}
        warnings.append(f"cannot summarize: {type(err).__name__}: {err}")
    if folded_run.error:
        warnings.append(folded_run.error)
    try:
        run.config()
    except (ValueError, OSError) as err:
        warnings.append(config_problem(run, err))
    if problems:
        warnings.append(f"{len(problems)} damaged line(s) skipped: "
                        f"{describe_problems(problems, 2)}")
    if run.read_status().message == DAMAGED_MESSAGE:
        warnings.append(DAMAGED_MESSAGE)
    summary["warning"] = "; ".join(warnings)
    return summary
