"""Sweeps: expansion and validation, skip and resume, a killed worker, Ray on a local instance."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import tomllib
from pathlib import Path

import pytest
import tomli_w

from prunetui import config, executors, figures, segments, store
from prunetui import sweep as sweeps
from prunetui.cli import main
from prunetui.presets import PRESETS_DIR
from tests.conftest import REPO, tiny_overrides


def tiny_base(root: Path, **extra) -> config.Config:
    values = {"train.iterations": 20, "train.eval_every": 10, "prune.rounds": 1}
    values.update(extra)
    return config.apply_overrides(config.Config(), tiny_overrides(root, **values))


def write_sweep(folder: Path, body: str, base: config.Config | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "base.toml").write_text(config.dumps(base or config.Config()))
    path = folder / "study.toml"
    path.write_text('base = "base.toml"\n' + body)
    return path


def metrics_without_time(run: store.RunDir) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "elapsed_s"} for row in run.metrics()]


def assert_complete(run: store.RunDir) -> None:
    """Finished, every segment evaluated, and no evaluation recorded twice."""
    cfg = run.config()
    assert run.read_status().state == store.FINISHED
    rows = run.metrics()
    keys = [(r["replicate"], r["round"], r["scheme"], r["iteration"]) for r in rows]
    assert len(keys) == len(set(keys))
    assert {k[:3] for k in keys} == {seg.key for seg in segments.plan(cfg)}


# --------------------------------------------------------------------------------- expansion


def test_grid_and_variants_expand_to_named_runs(tmp_path):
    path = write_sweep(tmp_path, """
[set]
train.iterations = 40
[grid]
data.dataset = ["mnist", "fashion-mnist"]
train.seed = [0, 1]
[[variants]]
name = "layer"
[[variants]]
name = "global"
prune.scope = "global"
""")
    runs = sweeps.expand(sweeps.load_spec(path))
    assert [r.name for r in runs] == [
        f"{v}_{d}_seed-{s}" for v in ("layer", "global") for d in ("mnist", "fashion-mnist")
        for s in (0, 1)]
    # Seeds of one setting share its label; the comparison averages over them.
    assert [r.setting for r in runs[:4]] == ["layer_mnist"] * 2 + ["layer_fashion-mnist"] * 2
    last = runs[-1].cfg
    assert (last.prune.scope, last.data.dataset, last.train.seed, last.train.iterations) == (
        "global", "fashion-mnist", 1, 40)
    assert runs[0].cfg.prune.scope == "layer"


def test_shipped_sweep_preset_is_two_datasets_by_two_seeds_on_quick():
    spec = sweeps.load_spec(sweeps.find_sweep_file("sweep-quick"))
    runs = sweeps.expand(spec)
    quick = config.load(PRESETS_DIR / "quick.toml")
    assert {(r.cfg.data.dataset, r.cfg.train.seed) for r in runs} == {
        (d, s) for d in ("mnist", "fashion-mnist") for s in (0, 1)}
    assert all(r.cfg.train.iterations == quick.train.iterations for r in runs)


@pytest.mark.parametrize(("grid", "named"), [
    ('prune.rate = [0.2, 1.5]', "prune.rate = 1.5"),
    ('train.bogus = [1]', "train.bogus"),
    ('data.dataset = ["mnist", "cifar"]', "data.dataset = 'cifar'"),
])
def test_a_bad_cell_is_rejected_before_anything_starts(tmp_path, capsys, grid, named):
    path = write_sweep(tmp_path, f"[grid]\ntrain.seed = [0, 1]\n{grid}\n")
    out = tmp_path / "models"
    assert main(["sweep", str(path), "--out", str(out), "--plain"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert named in err and "cell" in err
    assert not out.exists()


def test_dry_run_lists_the_runs_and_creates_nothing(tmp_path, capsys):
    path = write_sweep(tmp_path, '[grid]\nprune.scope = ["layer", "global"]\n'
                                 "train.seed = [0, 1]\n")
    out = tmp_path / "models"
    assert main(["sweep", str(path), "--out", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert all(f"{scope}_seed-{seed}" in text for scope in ("layer", "global") for seed in (0, 1))
    assert not out.exists()


def test_malformed_sweep_files_exit_2(tmp_path, capsys):
    bad = write_sweep(tmp_path, "[grid]\ntrain.seed = 3\n")
    assert main(["sweep", str(bad), "--out", str(tmp_path / "m")]) == 2
    assert "non-empty list" in capsys.readouterr().err
    (tmp_path / "nobase.toml").write_text("[grid]\ntrain.seed = [1]\n")
    assert main(["sweep", str(tmp_path / "nobase.toml"), "--out", str(tmp_path / "m")]) == 2
    assert "base" in capsys.readouterr().err


def test_a_changed_sweep_does_not_reuse_runs_made_with_other_settings(tmp_path):
    path = write_sweep(tmp_path, "[grid]\ntrain.seed = [0, 1]\n")
    spec = sweeps.load_spec(path)
    sweep = sweeps.prepare(spec, sweeps.expand(spec), tmp_path / "models")
    assert [r.name for r in sweep.runs()] == ["seed-0", "seed-1"]
    # The same sweep again (another thread share is fine) reuses them.
    sweeps.prepare(spec, sweeps.with_threads(sweeps.expand(spec), 3, spec), tmp_path / "models")
    path.write_text(path.read_text() + "[set]\ntrain.lr = 0.01\n")
    spec = sweeps.load_spec(path)
    with pytest.raises(sweeps.SweepError, match="different config"):
        sweeps.prepare(spec, sweeps.expand(spec), tmp_path / "models")


def test_a_damaged_run_entry_of_sweep_toml_is_named_by_report_and_figures(tmp_path, capsys):
    path = write_sweep(tmp_path, "[grid]\ntrain.seed = [0, 1]\n")
    spec = sweeps.load_spec(path)
    sweep = sweeps.prepare(spec, sweeps.expand(spec), tmp_path / "models")
    assert [(e.name, e.setting) for e in sweep.entries()] == [("seed-0", "all"), ("seed-1", "all")]
    record = tomllib.loads(sweep.record_path.read_text())
    del record["runs"][1]["name"]
    sweep.record_path.write_text(tomli_w.dumps(record))
    with pytest.raises(sweeps.SweepError, match=r"sweep.toml is damaged.*`name`"):
        sweep.entries()
    capsys.readouterr()
    assert main(["report", str(sweep.path)]) == 2
    assert "is damaged: a run entry does not fit" in capsys.readouterr().err
    with pytest.raises(figures.FigureError, match="is damaged: a run entry does not fit"):
        figures.sources_from_paths([sweep.path])  # report RUN --compare SWEEP --figure F


# --------------------------------------------------------------------------------- reading


def hand_written_sweep(tmp_path: Path, acc: dict[tuple[int, str], tuple[float, float]]
                       ) -> sweeps.SweepDir:
    """Two seeds of one setting, schemes keep and rewind, metrics written by hand (no training):
    ``acc[(round, scheme)]`` holds the test accuracy of seed 0 and seed 1."""
    base = config.apply_overrides(config.Config(), [("prune.rounds", 1),
                                                    ("prune.schemes", ["keep", "rewind"])])
    path = write_sweep(tmp_path, "[grid]\ntrain.seed = [0, 1]\n", base)
    spec = sweeps.load_spec(path)
    sweep = sweeps.prepare(spec, sweeps.expand(spec), tmp_path / "models")
    for seed, run in enumerate(sweep.runs()):
        rows = [{"replicate": 0, "round": r, "scheme": s, "epoch": 1.0, "iteration": 100,
                 "remaining": 0.8 if r else 1.0, "train_loss": 0.1, "val_loss": 0.2,
                 "val_acc": a[seed], "test_acc": a[seed], "elapsed_s": 1.0}
                for (r, s), a in acc.items()]
        run.metrics_path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return sweep


def test_the_dense_round_starts_every_schemes_curve(tmp_path):
    acc = {(0, "dense"): (0.90, 0.80), (1, "keep"): (0.70, 0.60), (1, "rewind"): (0.95, 0.85)}
    rows = sweeps.comparison(hand_written_sweep(tmp_path, acc))
    assert [(r.scheme, r.round) for r in rows] == [
        ("keep", 0), ("keep", 1), ("rewind", 0), ("rewind", 1)]
    for r in rows:
        seeds = acc[(r.round, segments.DENSE if r.round == 0 else r.scheme)]
        assert (r.seeds, r.mean) == (2, pytest.approx(sum(seeds) / 2))
        assert r.remaining == (0.8 if r.round else 1.0)
    curves = sweeps.comparison_curves(rows)
    assert {k: [p.round for p in v] for k, v in curves.items()} == {
        "keep": [0, 1], "rewind": [0, 1]}
    header, body = sweeps.comparison_table(rows)
    assert header == ["setting", "round", "left %", "keep", "keep range", "rewind",
                      "rewind range", "n"]
    assert [cells[:3] for cells in body] == [["all", "0", "100.0"], ["all", "1", "80.0"]]
    assert body[0][3:5] == body[0][5:7]  # the same dense networks under both schemes


def test_the_comparison_fits_80_columns_with_ranges_under_the_means():
    from rich.console import Console

    from prunetui.cli.sweep import comparison_table

    rows = [sweeps.ComparisonRow(setting, scheme, round_, 0.8 ** round_, 0.9 - 0.01 * round_,
                                 0.01, 3, 0.0123, 0.885, 0.912)
            for setting in ("fashion-mnist_global", "mnist_layer")
            for scheme in ("keep", "reinit", "rewind") for round_ in range(3)]
    for width in (80, 200):
        console = Console(width=width, record=True)
        console.print(comparison_table(rows, "sweep", width))
        text = console.export_text()
        assert max(len(line) for line in text.splitlines()) <= width
        assert "fashion-mnist_gl" in text and "88.5–91.2" in text, text  # never squeezed
        assert ("keep range" in text) == (width == 200)


def test_run_progress_counts_finished_segments_of_the_plan(tmp_path):
    sweep = hand_written_sweep(tmp_path, {(0, "dense"): (0.9, 0.8)})
    run = sweep.runs()[0]
    progress = sweeps.SweepRunProgress(run)
    assert progress.total == len(segments.plan(run.config())) == 3
    progress.poll()
    assert (progress.done, progress.active) == (0, False)
    assert progress.info().endswith("it 100: test 90.00%")
    for seg in segments.plan(run.config())[:2]:  # dense and keep finished, rewind not yet
        checkpoint = run.segment_checkpoint(*seg.key)
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        checkpoint.touch()
    run.init_checkpoint(0).touch()  # not a finished segment
    progress.poll()
    assert progress.done == 2
    assert sweeps.run_states(sweep) == ["waiting", "waiting"]


# --------------------------------------------------------------------------------- running


def test_rerun_skips_finished_runs_and_resumes_an_interrupted_one(tmp_path, mnist_root, capsys):
    from prunetui.control import RunControl
    from prunetui.events import Checkpointed
    from prunetui.experiment import Experiment

    path = write_sweep(tmp_path, "[grid]\ntrain.seed = [0, 1]\n", tiny_base(mnist_root))
    spec = sweeps.load_spec(path)
    sweep = sweeps.prepare(spec, sweeps.with_threads(sweeps.expand(spec), 1, spec),
                           tmp_path / "models")
    done, partial = sweep.runs()
    Experiment(done).execute()
    control = RunControl()

    def stop_at_first(event) -> None:
        if isinstance(event, Checkpointed):
            control.request_stop()

    assert Experiment(partial, stop_at_first, control).execute() == store.INTERRUPTED
    finished_before = done.metrics_path.read_bytes()
    kept = partial.metrics()
    assert kept

    assert main(["sweep", str(path), "--out", str(tmp_path / "models"), "--workers", "1",
                 "--plain"]) == 0
    out = capsys.readouterr().out
    assert "seed-0: skipped, finished already" in out
    assert done.metrics_path.read_bytes() == finished_before  # not started again
    assert_complete(partial)
    assert partial.metrics()[:len(kept)] == kept  # continued, not restarted
    assert "resuming" in (partial.path / "run.log").read_text()

    # The report of the sweep: one setting, two seeds, mean and 95% interval at each level.
    assert main(["report", str(sweep.path), "--no-plot"]) == 0
    report = capsys.readouterr().out
    assert "±" in report and "rewind" in report
    rows = sweeps.comparison(sweep)
    assert {r.seeds for r in rows} == {2}
    assert {r.round for r in rows} == {0, 1}
    assert main(["runs", str(tmp_path / "models")]) == 0
    assert "study/" in capsys.readouterr().out


def test_a_killed_run_process_is_restarted_and_resumes(tmp_path, mnist_root):
    path = write_sweep(tmp_path, "[grid]\ntrain.seed = [0]\n",
                       tiny_base(mnist_root, **{"prune.rounds": 2}))
    spec = sweeps.load_spec(path)
    sweep = sweeps.prepare(spec, sweeps.with_threads(sweeps.expand(spec), 1, spec),
                           tmp_path / "models")
    (run,) = sweep.runs()
    first_segment = run.segment_checkpoint(0, 0, "dense")
    events, killed = [], threading.Event()

    def kill_mid_way(pid: int) -> None:
        deadline = time.monotonic() + 120
        while not first_segment.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(pid, signal.SIGKILL)
        killed.set()

    def on_event(event) -> None:
        events.append(event)
        if isinstance(event, executors.Launched) and event.attempt == 1:
            threading.Thread(target=kill_mid_way, args=(event.pid,), daemon=True).start()

    states = executors.LocalExecutor(workers=1, threads=1).run([run.path], on_event)
    assert killed.is_set()
    assert states == {run.name: store.FINISHED}
    assert [type(e) for e in events] == [executors.Launched, executors.Retrying,
                                         executors.Launched, executors.RunEnded]
    assert events[2].attempt == 2
    assert_complete(run)
    log = (run.path / "run.log").read_text()
    assert "resuming" in log


def test_ray_on_a_local_instance_gives_the_local_executors_metrics(tmp_path, mnist_root):
    ray = pytest.importorskip("ray")
    path = write_sweep(tmp_path, "[grid]\ntrain.seed = [0, 1]\n", tiny_base(mnist_root))
    spec = sweeps.load_spec(path)
    runs = sweeps.with_threads(sweeps.expand(spec), 1, spec)
    local = sweeps.prepare(spec, runs, tmp_path / "local")
    remote = sweeps.prepare(spec, runs, tmp_path / "ray")
    states = executors.LocalExecutor(workers=2, threads=1).run([r.path for r in local.runs()])
    assert set(states.values()) == {store.FINISHED}

    executor = executors.RayExecutor(None, threads=1, init_kwargs={"num_cpus": 2})
    try:
        states = executor.run([r.path for r in remote.runs()])
    finally:
        ray.shutdown()
    assert set(states.values()) == {store.FINISHED}
    for a, b in zip(local.runs(), remote.runs(), strict=True):
        assert_complete(b)
        assert metrics_without_time(a) == metrics_without_time(b)
    # Every run was a separate process launched by a Ray worker, not by this test.
    assert all(r.read_status().pid != os.getpid() for r in remote.runs())


def test_a_grid_over_networks_runs_each_one_including_a_factory_of_your_own(
        tmp_path, mnist_root, capsys, monkeypatch):
    (tmp_path / "mynets.py").write_text(
        "import torch.nn as nn\n"
        "def mlp(num_classes, input_shape, hidden=32):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(),\n"
        "                         nn.Linear(hidden, num_classes))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [
        str(tmp_path), str(REPO), os.environ.get("PYTHONPATH", "")])))
    base = tiny_base(mnist_root, **{"prune.schemes": ["rewind"]})
    path = write_sweep(tmp_path, '[grid]\nmodel.arch = ["lenet-300-100", "mynets:mlp"]\n', base)
    runs = sweeps.expand(sweeps.load_spec(path))
    assert len({r.name for r in runs}) == 2
    assert all(":" not in r.name and "/" not in r.name for r in runs)  # folder names
    assert main(["sweep", str(path), "--out", str(tmp_path / "models"), "--workers", "1",
                 "--plain"]) == 0
    folders = sorted(p for p in (tmp_path / "models" / "study").iterdir() if p.is_dir())
    archs = set()
    for folder in folders:
        run = store.RunDir(folder)
        assert_complete(run)
        archs.add(run.config().model.arch)
    assert archs == {"lenet-300-100", "mynets:mlp"}
