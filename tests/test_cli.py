"""The headless CLI as a user runs it: exit codes, messages, presets end to end, reports."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from prunetui import store
from prunetui.cli import main
from tests.conftest import RAW_FILES, REPO, shared_datasets

QUICK = str(REPO / "presets" / "quick.toml")


def test_bad_config_exits_2_with_one_paragraph_and_no_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[prune]\nrate = 2.0\n")
    assert main(["run", str(bad), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "prune.rate" in err and "2.0" in err and str(bad) in err
    assert "Traceback" not in err
    assert not (tmp_path / "m").exists()  # stopped before any work


def test_bad_override_exits_2(tmp_path, capsys):
    assert main(["run", QUICK, "--set", "train.optimizer=lbfgs", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "train.optimizer" in err and "'adam', 'sgd'" in err


def test_missing_data_exits_2_saying_which_files_go_where(tmp_path, capsys, monkeypatch):
    from torchvision import datasets

    # The real download path runs; point it at a closed local port so the test is offline.
    monkeypatch.setattr(datasets.MNIST, "mirrors", ["http://127.0.0.1:9/"])
    root = tmp_path / "empty-root"
    code = main(["run", QUICK, "--set", f"data.root={root}", "--out", str(tmp_path / "m")])
    assert code == 2
    err = " ".join(capsys.readouterr().err.split())
    for name in RAW_FILES:
        assert name in err
    assert str(root / "MNIST" / "raw") in err
    assert "prunetui data import" in err
    assert "Traceback" not in err
    assert not any((tmp_path / "m").glob("*"))  # no empty run directory left behind


def test_data_import_puts_files_where_torchvision_reads_them(tmp_path, capsys):
    src = shared_datasets() / "mnist-real"
    if not (src / RAW_FILES[0]).exists():
        pytest.skip("MNIST not available")
    folder = tmp_path / "download"
    folder.mkdir()
    for name in RAW_FILES:
        shutil.copyfile(src / name, folder / name)
    assert main(["data", "import", str(folder), "--root", str(tmp_path / "root")]) == 0
    assert sorted(p.name for p in (tmp_path / "root" / "MNIST" / "raw").iterdir()) == sorted(
        RAW_FILES)
    assert main(["data", "import", str(tmp_path), "--root", str(tmp_path / "r2")]) == 2
    assert main(["data", "status", "--root", str(tmp_path / "root")]) == 0
    out = capsys.readouterr().out
    assert "present" in out and "missing" in out


def quick_run(root: Path, out: Path, name: str, *extra: str) -> store.RunDir:
    # The quick preset itself, shortened only in iterations and rounds to keep the suite fast.
    args = ["run", QUICK, "--set", f"data.root={root}", "--set", "train.iterations=200",
            "--set", "train.eval_every=100", "--set", "prune.rounds=2", "--out", str(out),
            "--name", name, "--plain", *extra]
    assert main(args) == 0
    return store.RunDir(out / name)


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_quick_preset_end_to_end_then_runs_and_report(dataset, data_root, request, tmp_path,
                                                      capsys):
    request.getfixturevalue("mnist_root" if dataset == "mnist" else "fashion_root")
    run = quick_run(data_root, tmp_path, dataset, "--set", f"data.dataset={dataset}")
    out = capsys.readouterr().out
    assert "test %" in out  # the results table closes the run
    assert run.read_status().state == store.FINISHED
    rows = run.metrics()
    assert {r["scheme"] for r in rows} == {"dense", "keep", "reinit", "rewind"}
    dense_acc = rows[1]["test_acc"]
    assert dense_acc > (0.9 if dataset == "mnist" else 0.7)

    assert main(["runs", str(tmp_path)]) == 0
    listing = capsys.readouterr().out
    assert dataset in listing and "finished" in listing

    csv_path = tmp_path / "table.csv"
    assert main(["report", str(run.path), "--csv", str(csv_path)]) == 0
    report = capsys.readouterr().out
    assert "rewind" in report and "weights remaining" in report  # table and plot
    table = list(csv.DictReader(csv_path.open()))
    assert len(table) == 1 + 2 * 3
    assert {row["scheme"] for row in table} == {"dense", "keep", "reinit", "rewind"}
    assert abs(float(table[-1]["remaining"]) - 0.6406) < 1e-3

    assert main(["run", "--resume", str(run.path)]) == 0
    assert "already finished" in capsys.readouterr().out


def test_report_and_resume_of_non_runs_exit_2(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert main(["run", "--resume", str(tmp_path)]) == 2
    assert main(["run"]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_existing_name_is_refused_with_a_hint(mnist_root, tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "config.toml").write_text("")
    assert main(["run", QUICK, "--out", str(tmp_path), "--name", "taken"]) == 2
    assert "--resume" in capsys.readouterr().err


def test_rich_progress_view_shows_round_scheme_epoch_and_accuracy():
    import io

    from rich.console import Console
    from rich.text import Text

    from prunetui.cli.render import RichRunView
    from prunetui.events import (
        Evaluated,
        RunFinished,
        RunStarted,
        SegmentFinished,
        SegmentStarted,
        TrainProgress,
    )
    from prunetui.store import SegmentOutcome

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    with RichRunView(console) as view:
        view(RunStarted("models/x", "x", "mnist", "lenet-300-100", ("rewind",), 1, 1, 100, 50,
                        "cpu"))
        view(SegmentStarted(0, 1, "rewind", 0.8, {}, 0, 100))
        view(Evaluated({"val_acc": 0.9712}))
        view(TrainProgress(0, 1, "rewind", 60, 100, 1, 0.25))
        view.progress.refresh()
        view(SegmentFinished(0, 1, "rewind", SegmentOutcome(0.8, 50, 0.97, 0.98)))
        view(RunFinished("models/x", "finished"))
    text = Text.from_ansi(out.getvalue()).plain
    for expected in ("round 1 rewind", "epoch 1", "val 97.12%", "test 97.00%",
                     "Run finished"):
        assert expected in text
