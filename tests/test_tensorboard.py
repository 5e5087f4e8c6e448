"""TensorBoard logging, read back with TensorBoard's own event reader (EventAccumulator)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from prunetui import config, extras, results, store
from prunetui.cli import main
from prunetui.experiment import Experiment
from prunetui.store import new_run
from tests.conftest import tiny_overrides

SCHEMES = ("keep", "reinit", "rewind")


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})  # 0: keep every point
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def logged(root: Path) -> dict[str, dict[str, list[tuple[int, float]]]]:
    return {d.name: scalars(d) for d in sorted(root.iterdir()) if d.is_dir()}


@pytest.fixture(scope="module")
def logged_run(mnist_root, tmp_path_factory):
    """A tiny run with [log] tensorboard set, as any front end starts it (Experiment)."""
    tmp = tmp_path_factory.mktemp("tb")
    cfg = config.apply_overrides(config.Config(), tiny_overrides(
        mnist_root, **{"log.tensorboard": str(tmp / "tb")}))
    run = new_run(cfg, tmp / "models", "logged")
    assert Experiment(run).execute() == store.FINISHED
    return run, tmp


def test_live_logging_holds_every_evaluation_result_and_layer(logged_run):
    run, tmp = logged_run
    logs = logged(tmp / "tb" / run.name)
    assert sorted(logs) == sorted(("dense", *SCHEMES))
    metrics = run.metrics()
    for row in metrics:  # every evaluation, as metrics.jsonl has it
        tags = logs[row["scheme"]]
        for key in ("test_acc", "val_acc", "val_loss", "train_loss"):
            points = dict(tags[f"round_{row['round']:02d}/{key}"])
            assert points[row["iteration"]] == pytest.approx(row[key], rel=1e-6)
    table = {(r.round, r.scheme): r for r in results.round_results(metrics)}
    for scheme in SCHEMES:  # the Lottery Ticket curve per scheme, from the dense round on
        curve = logs[scheme]["lottery/test_acc_at_early_stop"]
        assert [step for step, _ in curve] == [0, 1, 2]
        for round_, value in curve:
            row = table[(round_, "dense" if round_ == 0 else scheme)]
            assert value == pytest.approx(row.test_acc, rel=1e-6)
        left = dict(logs[scheme]["lottery/weights_left_pct"])
        assert left[0] == pytest.approx(100) and left[2] < left[1] < 100
    for record in run.sparsity():  # weights left per layer, per round
        owners = SCHEMES if record["scheme"] == "dense" else (record["scheme"],)
        for owner in owners:
            for layer, fraction in record["layers"].items():
                points = dict(logs[owner][f"weights_left_pct/{layer}"])
                assert points[record["round"]] == pytest.approx(100 * fraction, rel=1e-6)


def test_export_logs_of_the_finished_run_matches_the_live_log(logged_run, capsys):
    run, tmp = logged_run
    assert main(["export-logs", str(run.path), str(tmp / "exported")]) == 0
    assert "tensorboard --logdir" in capsys.readouterr().out
    live = logged(tmp / "tb" / run.name)
    exported = logged(tmp / "exported" / run.name)
    assert {k: sorted(v) for k, v in exported.items()} == {k: sorted(v) for k, v in live.items()}
    for scheme in live:
        for tag in live[scheme]:
            assert sorted(exported[scheme][tag]) == sorted(live[scheme][tag]), (scheme, tag)
    # A second export would double every point in TensorBoard: refused unless --replace.
    assert main(["export-logs", str(run.path), str(tmp / "exported")]) == 2
    assert "--replace" in capsys.readouterr().err
    assert main(["export-logs", str(run.path), str(tmp / "exported"), "--replace"]) == 0
    assert logged(tmp / "exported" / run.name) == exported


def test_export_logs_of_rows_without_their_optional_keys(logged_run, tmp_path, capsys):
    """MetricRow's optional keys (train_loss, epoch, elapsed_s) may be absent, as in rows
    written by hand or by an older prunetui: the export logs what the rows have."""
    run, _ = logged_run
    copy = store.RunDir(tmp_path / "models" / "older")
    copy.path.mkdir(parents=True)
    for path in (run.config_path, run.sparsity_path):
        (copy.path / path.name).write_bytes(path.read_bytes())
    copy.write_status(store.FINISHED)
    rows = [{k: v for k, v in r.items() if k not in ("train_loss", "epoch", "elapsed_s")}
            for r in run.metrics()]
    copy.metrics_path.write_text("".join(store.jsonl_line(r).decode() for r in rows))
    assert main(["export-logs", str(copy.path), str(tmp_path / "tb")]) == 0, \
        capsys.readouterr().err
    dense = scalars(tmp_path / "tb" / "older" / "dense")
    assert len(dense["round_00/test_acc"]) == sum(r["round"] == 0 for r in rows)
    assert not any(tag.endswith("/train_loss") for tag in dense)


def test_cli_flag_sets_the_config_key(tmp_path, mnist_root):
    args = ["run", "quick", "--tensorboard", str(tmp_path / "tb"), "--out",
            str(tmp_path / "m"), "--name", "flag", "--plain"]
    for key, value in tiny_overrides(mnist_root, **{"prune.rounds": 1}):
        args += ["--set", f"{key}={value}"]
    assert main(args) == 0
    run = store.RunDir(tmp_path / "m" / "flag")
    assert run.config().log.tensorboard == str(tmp_path / "tb")
    assert "lottery/test_acc_at_early_stop" in scalars(tmp_path / "tb" / "flag" / "rewind")
    assert main(["run", "--resume", str(run.path), "--tensorboard", "x"]) == 2


def test_missing_extra_stops_before_any_work_with_how_to_install(tmp_path, capsys,
                                                                monkeypatch):
    monkeypatch.setitem(extras.EXTRAS, "tensorboard", "no_such_module_for_this_test")
    assert main(["run", "quick", "--tensorboard", str(tmp_path / "tb"),
                 "--out", str(tmp_path / "m")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "pip install 'prunetui[tensorboard]'" in err and "Traceback" not in err
    assert not (tmp_path / "m").exists() and not (tmp_path / "tb").exists()
    toml = tmp_path / "c.toml"
    toml.write_text(f"[log]\ntensorboard = '{tmp_path / 'tb'}'\n")
    assert main(["run", str(toml), "--out", str(tmp_path / "m")]) == 2
    assert not (tmp_path / "m").exists()


def test_setup_form_flags_the_field_when_the_extra_is_missing(monkeypatch):
    from prunetui.app import formspec

    values = formspec.values_from_config(config.Config())
    values["log.tensorboard"] = "runs/tb"
    cfg, errors = formspec.check(values)
    assert cfg is not None and cfg.log.tensorboard == "runs/tb" and not errors
    monkeypatch.setitem(extras.EXTRAS, "tensorboard", "no_such_module_for_this_test")
    cfg, errors = formspec.check(values)
    assert cfg is None and "prunetui[tensorboard]" in errors["log.tensorboard"]
