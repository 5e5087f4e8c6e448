"""The app's pure parts: the Setup form's parsing and engine validation, RunData's tailing."""

from __future__ import annotations

import json
import subprocess
import sys

from prunetui import config, presets, results, segments, store
from prunetui.app import formspec
from prunetui.app.rundata import RunData
from prunetui.app.widgets.charts import decimate
from tests.conftest import REPO


def test_form_round_trips_every_preset_and_reports_engine_reasons_per_field():
    for preset in sorted((REPO / "presets").glob("*.toml")):
        if presets.read_preset(preset).kind != presets.RUN:
            continue  # a sweep file (prunetui sweep), not a run config
        cfg = config.load(preset)
        assert formspec.check(formspec.values_from_config(cfg)) == (cfg, {})
    values = formspec.values_from_config(config.Config())
    bad = dict(values, **{"prune.rate": "1.5", "train.lr": "fast", "model.arch": "lightcnn-9",
                          "prune.schemes": [], "train.batch_size": "2.5"})
    cfg, errors = formspec.check(bad)
    assert cfg is None
    assert set(errors) == {"prune.rate", "train.lr", "model.arch", "prune.schemes",
                           "train.batch_size"}
    assert "faces" in errors["model.arch"] and "number" in errors["train.lr"]
    target = dict(values, **{"prune.stop_by": "target", "prune.target_remaining": "0.1"})
    cfg, errors = formspec.check(target)
    assert errors == {} and cfg.prune.target_remaining == 0.1 and cfg.num_rounds == 11


def test_form_reads_a_toml_table_and_lists_unknown_keys():
    values, unknown = formspec.values_from_raw(
        {"train": {"epochs": 3, "lr": 0.1}, "prune": {"schemes": ["keep", "rewind:500"]},
         "extra": {}, "data": {"colour": 1}})
    assert values["train.length_by"] == "epochs" and values["train.epochs"] == "3"
    assert values["prune.schemes"] == ["keep"] and values["prune.late_rewind"] == "500"
    assert unknown == ["extra", "data.colour"]


def test_form_keeps_each_late_scheme_on_its_own_field_and_edits_the_schedule():
    cfg = config.apply_overrides(config.Config(), [
        ("prune.schemes", ["rewind:300", "lr-rewind:500", "finetune", "synflow"]),
        ("train.schedule", "step"), ("train.milestones", [20000, 40000])])
    values = formspec.values_from_config(cfg)
    assert values["prune.late_rewind"] == "300" and values["prune.late_lr_rewind"] == "500"
    assert values["train.milestones"] == "20000, 40000"
    checked, errors = formspec.check(values)
    assert errors == {} and set(checked.prune.schemes) == set(cfg.prune.schemes)
    assert checked.train == cfg.train
    too_late = dict(values, **{"prune.late_lr_rewind": "50000"})
    checked, errors = formspec.check(too_late)
    assert checked is None and set(errors) == {"prune.late_lr_rewind"}
    finetune_lr = formspec.BY_KEY["train.finetune_lr"]
    assert finetune_lr.visible(values) and not finetune_lr.visible(
        dict(values, **{"prune.schemes": ["rewind"]}))


def test_form_takes_any_network_by_name_with_its_arguments(tmp_path, monkeypatch):
    (tmp_path / "mynets.py").write_text(
        "import torch.nn as nn\n"
        "def tiny(num_classes, input_shape, hidden=8):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(),\n"
        "                         nn.Linear(hidden, num_classes))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    values = formspec.values_from_config(config.Config())
    own = dict(values, **{"model.arch": "mynets:tiny", "model.args": "{hidden = 16}"})
    cfg, errors = formspec.check(own)
    assert errors == {} and cfg.model.arch == "mynets:tiny" and cfg.model.args == {"hidden": 16}
    assert formspec.values_from_config(cfg)["model.args"] == "{hidden = 16}"
    assert formspec.BY_KEY["model.args"].visible(own)
    assert not formspec.BY_KEY["model.args"].visible(values)
    missing = dict(own, **{"model.arch": "mynets:nothing"})
    assert set(formspec.check(missing)[1]) == {"model.arch"}
    not_toml = dict(own, **{"model.args": "hidden: 16"})
    assert formspec.check(not_toml)[1] == {"model.args": formspec.KIND_HINT["table"]}
    built_in_with_args = dict(values, **{"model.args": "{hidden = 16}"})
    assert set(formspec.check(built_in_with_args)[1]) == {"model.args"}


def write_rows(path, rows):
    with path.open("a") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")


def row(round_, scheme, iteration, val_loss, test_acc, remaining=1.0):
    return {"replicate": 0, "round": round_, "scheme": scheme, "epoch": iteration / 10,
            "iteration": iteration, "remaining": remaining, "train_loss": 1.0,
            "val_loss": val_loss, "val_acc": 1 - val_loss / 2, "test_acc": test_acc,
            "elapsed_s": 0.0}


def test_rundata_tails_the_store_and_matches_results_on_the_whole_file(tmp_path):
    run = store.create_run(tmp_path, "r", config.dumps(config.Config()))
    data = RunData(run)
    assert not data.poll() or data.evaluations == 0
    rows = [row(0, "dense", i, 1 / i, 0.5 + i / 100) for i in (10, 20, 30)]
    rows += [row(1, s, i, (i - 15) ** 2 / 100 + 0.1, 0.6 + i / 100 + (s == "keep") / 10, 0.8)
             for s in ("keep", "rewind") for i in (10, 20, 30)]
    write_rows(run.metrics_path, rows[:4])
    assert data.poll() and data.evaluations == 4
    write_rows(run.metrics_path, rows[4:])
    with run.metrics_path.open("a") as fh:
        fh.write('{"torn": ')  # a writer killed mid-line
    assert data.poll() and data.evaluations == len(rows)
    assert data.round_results() == results.round_results(rows)
    assert set(data.lottery_curves()) == {"keep", "rewind"}
    assert data.accuracy_curves(1)["keep"][0] == (1.0, 100 * rows[3]["test_acc"])
    assert data.per_epoch == 10 and data.current == (0, 1, "rewind")
    store.truncate(run.metrics_path, len(json.dumps(rows[0])) + 1)  # a resume cut it back
    assert data.poll() and data.evaluations == 1 and data.round_results()[0].round == 0


def test_rundata_sizes_its_progress_from_the_run_plan_and_checkpoints(tmp_path):
    cfg = config.apply_overrides(config.Config(), [
        ("train.replicates", 2), ("prune.rounds", 3), ("train.iterations", 70)])
    data = RunData(store.create_run(tmp_path, "iterations", config.dumps(cfg)))
    assert data.total_segments == len(segments.plan(cfg)) == 2 * (1 + 3 * 3)
    assert data.iterations_per_segment == 70
    by_epochs = config.apply_overrides(cfg, [("train.epochs", 2)])
    run = store.create_run(tmp_path, "epochs", config.dumps(by_epochs))
    data = RunData(run)
    assert data.iterations_per_segment is None  # an epoch's length is known from a row
    write_rows(run.metrics_path, [row(0, "dense", 10, 0.5, 0.5)])  # epoch 1 at iteration 10
    for scheme in ("dense", "keep"):
        path = run.segment_checkpoint(0, 0 if scheme == "dense" else 1, scheme)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    run.resume_checkpoint().write_bytes(b"")  # not a finished segment
    data.poll()
    assert data.iterations_per_segment == 20 and data.segments_done == 2


def test_rundata_names_rows_the_charts_cannot_draw_and_skips_them(tmp_path):
    run = store.create_run(tmp_path, "r", config.dumps(config.Config()))
    rows = [row(0, "dense", 10 * i, 0.5, 0.5) for i in range(1, 6)]
    rows[1]["test_acc"], rows[3]["val_loss"] = float("nan"), 1e300
    write_rows(run.metrics_path, rows)
    data = RunData(run)
    data.poll()
    assert data.evaluations == 3
    assert [str(p) for p in data.drain_problems()] == [
        f"metrics.jsonl line {n}: a number is NaN, infinite or out of range" for n in (2, 4)]


def test_decimate_keeps_ends_and_bounds_the_count():
    points = [(float(i), float(i)) for i in range(1000)]
    out = decimate(points, 50)
    assert len(out) == 50 and out[0] == points[0] and out[-1] == points[-1]
    assert decimate(points[:10], 50) == points[:10]


def test_app_start_imports_no_torch():
    code = ("import asyncio, sys\n"
            "from prunetui.app.app import PruneApp\n"
            "async def main():\n"
            "    app = PruneApp(models_dir='m', data_root='d')\n"
            "    async with app.run_test(size=(80, 24)) as pilot:\n"
            "        for key in '1234':\n"
            "            await pilot.press(key)\n"
            "        await pilot.pause(0.3)\n"
            "    print('torch' in sys.modules)\n"
            "asyncio.run(main())\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr
