"""Damaged run folders never crash the app; long runs are read off the event loop.

A models folder holds one run per kind of damage (built from synthetic store files: the app
only reads them) and a 200,000-row run. Runs lists them all, names damaged lines (file and
line number), and every run opens, compares and is followed without an exception.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import pytest

from prunetui import config, results, store
from prunetui.app.app import PruneApp
from prunetui.app.rundata import READ_ON_LOOP_BYTES, RunData
from prunetui.app.screens.monitor import MonitorScreen
from prunetui.app.screens.results import ResultsScreen
from prunetui.app.screens.runs import RunsScreen
from prunetui.app.widgets.charts import Chart, decimate
from tests.app.conftest import SIZE, wait_for

SCHEMES = ("keep", "reinit", "rewind")
LAYERS = ("fc1.weight", "fc2.weight", "fc3.weight")


def segments(replicates: int, rounds: int) -> list[tuple[int, int, str]]:
    return [(rep, r, s) for rep in range(replicates) for r in range(rounds + 1)
            for s in (("dense",) if r == 0 else SCHEMES)]


def metric_row(key: tuple[int, int, str], i: int, per_epoch: int = 10) -> dict:
    rep, round_, scheme = key
    iteration = 10 * (i + 1)
    wobble = ((7 * i + 3 * round_ + len(scheme)) % 11) / 100  # not monotonic: min/max matter
    return {"replicate": rep, "round": round_, "scheme": scheme,
            "epoch": iteration / (10 * per_epoch), "iteration": iteration,
            "remaining": 0.8 ** round_, "train_loss": 0.5, "val_loss": 0.3 + wobble,
            "val_acc": 0.9 - wobble, "test_acc": 0.88 - wobble + round_ / 1000,
            "elapsed_s": 0.1 * i}


def sparsity_record(key: tuple[int, int, str]) -> dict:
    left = 0.8 ** key[1]
    return {"replicate": key[0], "round": key[1], "scheme": key[2], "remaining": left,
            "layers": {name: left for name in LAYERS},
            "counts": {name: [round(100 * left), 100] for name in LAYERS}}


def write_run(models: Path, name: str, replicates: int = 1, rounds: int = 2, per_segment: int = 6,
              state: str = store.FINISHED, pid: int | None = None) -> store.RunDir:
    """A run folder as the engine writes it (config, status, both JSON-lines files)."""
    cfg = config.apply_overrides(config.Config(), [
        ("prune.rounds", rounds), ("train.replicates", replicates), ("train.iterations",
                                                                      10 * per_segment)])
    run = store.create_run(models, name, config.dumps(cfg))
    with run.metrics_path.open("w") as metrics, run.sparsity_path.open("w") as sparsity:
        for key in segments(replicates, rounds):
            sparsity.write(json.dumps(sparsity_record(key)) + "\n")
            metrics.writelines(json.dumps(metric_row(key, i)) + "\n" for i in range(per_segment))
    run.write_status(state, pid=pid if pid is not None else 999_999_999)
    return run


def replace_line(path: Path, number: int, text: str) -> None:
    lines = path.read_text().splitlines(keepends=True)
    lines[number - 1] = text + "\n"
    path.write_text("".join(lines))


def damaged_models(models: Path) -> dict[str, store.RunDir]:
    """One run per kind of damage; the values say what the Runs screen must warn about."""
    runs = {name: write_run(models, name) for name in (
        "metrics-bad-line", "metrics-missing-key", "metrics-bad-epoch", "metrics-empty",
        "metrics-deleted", "metrics-binary", "metrics-folder", "metrics-nan", "sparsity-bad-line",
        "sparsity-deleted", "config-deleted", "config-binary", "config-invalid", "config-empty",
        "status-deleted", "status-garbage", "status-list", "status-bad-pid",
        "checkpoint-truncated", "finished-torn-tail", "odd-values")}
    replace_line(runs["metrics-bad-line"].metrics_path, 5, '{"replicate": 0, "round"')
    row = metric_row((0, 1, "keep"), 2)
    del row["val_loss"]
    replace_line(runs["metrics-missing-key"].metrics_path, 9, json.dumps(row))
    replace_line(runs["metrics-bad-epoch"].metrics_path, 3,
                 json.dumps(dict(metric_row((0, 0, "dense"), 2), epoch="two")))
    for line, value in ((2, float("nan")), (8, float("inf")), (14, -1e300), (15, 3e8)):
        replace_line(runs["metrics-nan"].metrics_path, line,
                     json.dumps(dict(metric_row((0, 0, "dense"), 1), test_acc=value)))
    with runs["odd-values"].metrics_path.open("a") as metrics, \
            runs["odd-values"].sparsity_path.open("a") as sparsity:  # valid, but odd to draw
        for key in ((0, 3, ""), (0, 3, "[bold]ünï©ødé[/]"), (-5, 10**11, "x" * 300)):
            sparsity.write(json.dumps(dict(sparsity_record(key), layers={
                "[red]": 0.5, "": -3, "x" * 200: 2.0, "nan": float("nan")})) + "\n")
            metrics.writelines(json.dumps(dict(metric_row(key, i), test_acc=0.5)) + "\n"
                               for i in range(3))
    runs["metrics-empty"].metrics_path.write_bytes(b"")
    runs["metrics-deleted"].metrics_path.unlink()
    runs["metrics-binary"].metrics_path.write_bytes(bytes(range(256)) * 4 + b"\n\xff\xfe\n")
    runs["metrics-folder"].metrics_path.unlink()
    runs["metrics-folder"].metrics_path.mkdir()
    replace_line(runs["sparsity-bad-line"].sparsity_path, 2, "[1, 2, 3]")
    runs["sparsity-deleted"].sparsity_path.unlink()
    runs["config-deleted"].config_path.unlink()
    runs["config-binary"].config_path.write_bytes(b"\x00\xff\xfe garbage \x80")
    runs["config-invalid"].config_path.write_text('[train]\nlr = "fast"\n')
    runs["config-empty"].config_path.write_text("")
    runs["status-deleted"].status_path.unlink()
    runs["status-garbage"].status_path.write_bytes(b"\xff\x00{{{")
    runs["status-list"].status_path.write_text("[1, 2]")
    runs["status-bad-pid"].status_path.write_text('{"state": "running", "pid": "abc"}')
    ckpt = runs["checkpoint-truncated"].segment_checkpoint(0, 0, "dense")
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"PK\x03\x04 truncated")
    with runs["finished-torn-tail"].metrics_path.open("a") as fh:
        fh.write('{"replicate": 0, "ro')
    return runs


# The runs whose damaged lines the Runs screen names, and where.
LINE_WARNINGS = {"metrics-bad-line": "metrics.jsonl line 5",
                 "metrics-missing-key": "metrics.jsonl line 9",
                 "metrics-binary": "metrics.jsonl line 1",
                 "metrics-nan": "metrics.jsonl line 2: a number is NaN, infinite or out",
                 "sparsity-bad-line": "sparsity.jsonl line 2",
                 "finished-torn-tail": "metrics.jsonl line"}


@pytest.fixture(scope="module")
def big_run(tmp_path_factory) -> store.RunDir:
    """5 replicates x 46 segments x 870 evaluations: 200,100 metric rows (~45 MB)."""
    return write_run(tmp_path_factory.mktemp("big") / "models", "big-200k", replicates=5,
                     rounds=15, per_segment=870)


def details(screen: RunsScreen) -> str:
    return str(screen.query_one("#run-details").render())


async def open_current(pilot, app: PruneApp) -> None:
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, (ResultsScreen, MonitorScreen)), 10,
                   "the run to open")
    screen = app.screen
    data = screen.data if isinstance(screen, ResultsScreen) else [screen.data]
    await wait_for(pilot, lambda: all(d.loaded for d in data), 120, "the run to be read")
    await pilot.pause()


async def test_runs_screen_lists_warns_and_opens_every_damaged_run(tmp_path):
    models = tmp_path / "models"
    runs = damaged_models(models)
    app = PruneApp(models_dir=models, data_root=tmp_path / "data", start="runs")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        await wait_for(pilot, lambda: len(screen.summaries) == len(runs), 30, "every run")
        summaries = {Path(key).name: s for key, s in screen.summaries.items()}
        for name, where in LINE_WARNINGS.items():
            assert where in summaries[name]["warning"], (name, summaries[name])
        for name in ("config-deleted", "config-binary", "config-invalid", "metrics-folder",
                     "status-list", "status-bad-pid", "status-garbage"):
            assert summaries[name]["warning"], name
        assert summaries["status-list"]["status"] == store.INTERRUPTED
        for name in ("metrics-empty", "metrics-deleted", "config-empty", "status-deleted"):
            assert not summaries[name]["warning"], (name, summaries[name])
        # The results skip the damaged line and keep every other row.
        good = write_run(tmp_path / "reference", "reference").metrics_path.read_text()
        rows = [json.loads(line) for i, line in enumerate(good.splitlines(), 1) if i != 5]
        dense = results.round_results(rows)[0]
        assert summaries["metrics-bad-line"]["dense"] == f"{100 * dense.test_acc:.2f}%"

        for i, key in enumerate(screen.summaries):
            screen.query_one("#runs-table").move_cursor(row=i, animate=False)
            await pilot.pause()
            if summaries[Path(key).name]["warning"]:
                assert "warning:" in details(screen)
            await open_current(pilot, app)
            opened = app.screen
            if isinstance(opened, ResultsScreen):
                name = Path(key).name
                title = str(opened.query_one("#results-title").render())
                if name in LINE_WARNINGS:
                    assert LINE_WARNINGS[name].split(" line")[0] in title
                    assert "damaged line" in title
                await pilot.press("left_square_bracket", "right_square_bracket", "z", "z")
                await pilot.press("escape")
            else:  # a status saying running with a live pid is followed
                await pilot.press("4")
            await wait_for(pilot, lambda: app.screen is screen, 5, "back to Runs")

        # Compare two damaged runs on the same charts.
        screen.query_one("#runs-table").move_cursor(
            row=list(screen.summaries).index(str(runs["metrics-bad-line"].path)), animate=False)
        await pilot.press("space")
        screen.query_one("#runs-table").move_cursor(
            row=list(screen.summaries).index(str(runs["config-binary"].path)), animate=False)
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ResultsScreen), 10, "compare")
        assert len(app.screen.data) == 2
        title = str(app.screen.query_one("#results-title").render())
        assert "metrics.jsonl line 5" in title and "config.toml cannot be read" in title
        await pilot.press("escape")
        assert app.return_code is None


async def test_monitor_names_damaged_lines_and_survives_the_run_folder_going(tmp_path):
    models = tmp_path / "models"
    run = write_run(models, "followed", state=store.RUNNING, pid=os.getpid())
    app = PruneApp(models_dir=models, data_root=tmp_path / "data", start="runs")
    async with app.run_test(size=SIZE) as pilot:
        assert await app.follow(run)
        monitor = app.screen
        assert isinstance(monitor, MonitorScreen)
        await wait_for(pilot, lambda: monitor.data.loaded, 10, "the first read")
        lines = len(run.metrics_path.read_text().splitlines())
        with run.metrics_path.open("a") as fh:  # damage arrives while following
            fh.write("not json at all\n")
            fh.write(json.dumps(metric_row((0, 2, "rewind"), 6)) + "\n")
        seen = monitor.data.evaluations
        await wait_for(pilot, lambda: monitor.data.evaluations > seen, 10, "the next row")
        log = "\n".join(monitor.query_one("#run-log").lines)
        assert f"metrics.jsonl line {lines + 1}: not valid JSON" in log
        assert [p.line for p in monitor.data.problems] == [lines + 1]
        shutil.rmtree(run.path)  # deleted while open
        await wait_for(pilot, lambda: monitor.data.state == "missing", 10, "the run to go")
        await pilot.pause(0.6)
        assert monitor.data.evaluations == 0 and app.return_code is None


def test_decimate_keeps_every_dip_and_peak():
    points = [(float(i), 50.0 + (i % 7)) for i in range(2000)]
    points[1234] = (1234.0, 3.0)  # one evaluation far below the rest
    points[777] = (777.0, 99.0)
    out = decimate(points, 120)
    assert len(out) <= 120 and out[0] == points[0] and out[-1] == points[-1]
    assert points[1234] in out and points[777] in out
    assert [p[0] for p in out] == sorted(p[0] for p in out)


async def test_a_200k_row_run_is_read_off_the_event_loop(big_run, monkeypatch):
    reads: list[tuple[bool, int]] = []  # (on the event loop's thread, bytes read)
    original = RunData.read

    def recording(self, *args, **kwargs):
        update = original(self, *args, **kwargs)
        if update is not None:
            reads.append((threading.current_thread() is threading.main_thread(),
                          update.bytes_read))
        return update

    monkeypatch.setattr(RunData, "read", recording)
    models = big_run.path.parent
    app = PruneApp(models_dir=models, data_root=models / "data", start="runs")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.summaries, 60, "the big run listed")
        assert screen.summaries[str(big_run.path)]["rounds"] == "15/15"
        await open_current(pilot, app)
        opened = app.screen
        assert isinstance(opened, ResultsScreen)
        data = opened.data[0]
        assert data.evaluations == 200_100
        # Exact results from every row, and charts drawn from a few hundred points a line.
        assert data.round_results() == results.round_results(big_run.metrics())
        assert opened.query_one("#results-table").row_count == 1 + 15 * len(SCHEMES)
        await wait_for(pilot, lambda: all(c.builds for c in opened.query(Chart)), 10, "charts")
        await pilot.press("escape")

        # Follow it as a running run: the first read in a worker, new rows on the loop.
        big_run.write_status(store.RUNNING)
        assert await app.follow(big_run)
        monitor = app.screen
        await wait_for(pilot, lambda: monitor.data.loaded, 60, "the Monitor's first read")
        with big_run.metrics_path.open("a") as fh:
            fh.write(json.dumps(metric_row((4, 15, "rewind"), 870)) + "\n")
        await wait_for(pilot, lambda: monitor.data.evaluations == 200_101, 10, "the new row")
        big_run.write_status(store.FINISHED)
    big_reads = [on_loop for on_loop, size in reads if size > READ_ON_LOOP_BYTES]
    # Runs' summaries, Results and the Monitor each read the whole file: never on the loop.
    assert len(big_reads) >= 3 and not any(big_reads)
    assert any(on_loop for on_loop, size in reads if 0 < size <= READ_ON_LOOP_BYTES)


async def test_resume_in_the_app_repairs_a_lost_config_and_a_truncated_checkpoint(models,
                                                                                   mnist_root):
    from tests.app.test_runs import interrupted_run

    lost_config = interrupted_run(models, mnist_root, "lost-config")
    lost_config.config_path.unlink()
    truncated = interrupted_run(models, mnist_root, "truncated-resume")
    data = truncated.resume_checkpoint().read_bytes()
    truncated.resume_checkpoint().write_bytes(data[: len(data) // 2])
    app = PruneApp(models_dir=models, data_root=mnist_root, start="runs")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: len(screen.summaries) == 2, 10, "both runs")
        assert "config.toml" in screen.summaries[str(lost_config.path)]["warning"]
        for run in (lost_config, truncated):
            screen.query_one("#runs-table").move_cursor(
                row=list(screen.summaries).index(str(run.path)), animate=False)
            await pilot.press("r")
            await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen), 5, "Monitor")
            monitor = app.monitor()
            await wait_for(pilot, lambda: not app.monitor().training, 120, f"{run.name} ends")
            await wait_for(pilot, lambda m=monitor: m.data.state == store.FINISHED
                           and m.data.evaluations == 8, 10, "the last store poll")
            assert monitor.data.state == store.FINISHED, monitor.data.status
            assert monitor.data.evaluations == 8 and monitor.data.cfg is not None
            assert "warning" in "\n".join(monitor.query_one("#run-log").lines)
            await pilot.press("4")
            await wait_for(pilot, lambda: app.screen is screen, 5, "Runs")
    assert lost_config.exists()  # config.toml is back


def test_runs_row_reads_on_from_where_it_stopped_and_matches_a_full_read(tmp_path):
    from prunetui.app.runlist import runs_row

    run = write_run(tmp_path, "growing", rounds=1, state=store.RUNNING, pid=os.getpid())
    folded: dict[str, RunData] = {}
    first = runs_row(run, folded)
    with run.metrics_path.open("a") as fh:  # a better keep row, then a damaged line
        fh.write(json.dumps(dict(metric_row((0, 1, "keep"), 6), val_loss=0.01,
                                 test_acc=0.99)) + "\n")
        fh.write("{oops\n")
    offset = folded[str(run.path)].metrics_tail.offset
    second = runs_row(run, folded)
    assert folded[str(run.path)].metrics_tail.offset > offset > 0  # read on, not again
    full, problems = results.run_summary_checked(run)
    def without_warning(summary: dict[str, str]) -> dict[str, str]:
        return {k: v for k, v in summary.items() if k != "warning"}

    assert without_warning(second) == full != without_warning(first)
    assert "99.00%" in second["best"] and [p.line for p in problems] == [26]
    assert "metrics.jsonl line 26: not valid JSON" in second["warning"]
