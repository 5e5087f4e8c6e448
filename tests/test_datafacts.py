"""``datafacts.json``: a run records how its inputs were normalized (and its class names) when
it starts, and export reads that instead of decoding the training set again, so an export
stays right after the data folder moved. Old runs without the file export by decoding, as
before; a damaged file is judged by the one damage assessment (check reports it, export falls
back to decoding with a warning, a resume moves it aside and rewrites it).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from prunetui import config, export, store
from prunetui.cli import main
from prunetui.data import load_data
from prunetui.data.folder import list_folder
from prunetui.experiment import Experiment
from prunetui.fileio import DAMAGED, INTACT, MISSING, sidecar
from prunetui.integrity import check_run
from prunetui.store import DATAFACTS_FILE, DataFacts, read_facts
from tests.test_faces_data import make_faces
from tests.test_folder_data import make_folder

SPLIT = [0.5, 0.25, 0.25]
TRAIN = {"model.arch": "lenet-300-100", "train.iterations": 6, "train.eval_every": 3,
         "train.batch_size": 8, "train.threads": 1, "prune.rounds": 1,
         "prune.schemes": ["rewind"]}


def folder_run(base: Path) -> store.RunDir:
    """A finished tiny LeNet run on three classes of 40x40 RGB PNGs in ``base/imgs``."""
    root = make_folder(base / "imgs", 3, 8, size=40, mode="RGB")
    values = {"data.dataset": "folder", "data.root": str(root), "data.channels": 3,
              "data.image_size": 36, "data.crop": 32, "data.split": SPLIT, **TRAIN}
    run = store.new_run(config.apply_overrides(config.Config(), list(values.items())),
                        base / "models", "folder")
    assert Experiment(run).execute() == store.FINISHED
    return run


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> store.RunDir:
    return folder_run(tmp_path_factory.mktemp("folder"))


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> store.RunDir:
    base = tmp_path_factory.mktemp("faces")
    root = make_faces(base / "faces", {"ann": 6, "bob": 6, "cy": 6}, size=48)
    values = {"data.dataset": "faces", "data.root": str(root), "data.image_size": 40,
              "data.crop": 32, **TRAIN, "model.arch": "lightcnn-9", "model.width": 0.25,
              "model.init": "kaiming-normal"}
    run = store.new_run(config.apply_overrides(config.Config(), list(values.items())),
                        base / "models", "faces")
    assert Experiment(run).execute() == store.FINISHED
    return run


def copy_run(run: store.RunDir, to: Path) -> store.RunDir:
    shutil.copytree(run.path, to)
    return store.RunDir(to)


def exported(run: store.RunDir, out: Path) -> export.PrunedModel:
    src = export.load_source(run, export.choose(run, 1, "rewind"))
    export.export(src, "sparse", out)
    return export.load_pruned(out)


def decoded_normalization(cfg: config.Config) -> dict[str, Any]:
    """What export computed before datafacts.json: the training set decoded again."""
    data = load_data(cfg)
    if cfg.data.dataset == "faces":
        return {"mean": data.mean, "std": data.std}
    return {"mean": list(data.mean), "std": list(data.std)}


def test_a_folder_run_records_the_normalization_and_names_its_training_used(folder) -> None:
    probe = read_facts(folder.path)
    assert probe.state == INTACT and sidecar(probe.path).is_file()
    data = load_data(folder.config())
    facts = probe.facts
    assert facts == DataFacts.of(data)
    assert facts.mean == data.mean and facts.std == data.std  # the exact floats, per channel
    assert len(facts.mean) == 3
    assert facts.class_names == list_folder(Path(folder.config().data.root),
                                            tuple(SPLIT)).classes
    assert facts.input_shape == (3, 32, 32) and facts.num_classes == 3
    assert facts.train_size == data.train_size
    assert json.loads(probe.path.read_text())["schema"] == 1


def test_export_uses_the_record_after_the_data_folder_moved(tmp_path) -> None:
    run = folder_run(tmp_path)  # its own folder: no decode cached by other tests
    cfg = run.config()
    expected = decoded_normalization(cfg)
    root = Path(cfg.data.root)
    test_files = [p for p, _ in list_folder(root, tuple(SPLIT)).sets["test"]]
    data = load_data(cfg)
    src = export.load_source(run, export.choose(run, 1, "rewind"))
    inputs = data.eval_input(data.test_x)  # what the run's evaluation fed the model
    with torch.inference_mode():
        logits = src.build()(inputs)
    moved = root.rename(tmp_path / "moved")  # nothing decoded from root before this export
    model = exported(run, tmp_path / "after.pt")
    assert model.meta["input_normalization"] == expected
    assert model.class_names == ["class0", "class1", "class2"]
    moved_files = [moved / p.relative_to(root) for p in test_files]
    prepared = model.prepare(moved_files)
    assert torch.equal(prepared, inputs)
    with torch.inference_mode():
        got = model(prepared)
    assert torch.equal(got.argmax(1), logits.argmax(1))
    torch.testing.assert_close(got, logits)
    assert main(["export", str(run.path), str(tmp_path / "cli.pt")]) == 0
    assert export.load_pruned(tmp_path / "cli.pt").meta["input_normalization"] == expected


def test_a_run_without_the_file_still_exports_by_decoding(folder, tmp_path) -> None:
    old = copy_run(folder, tmp_path / "old")
    old.datafacts_path.unlink()
    sidecar(old.datafacts_path).unlink()
    model = exported(old, tmp_path / "old.pt")
    assert model.meta["input_normalization"] == decoded_normalization(old.config())
    assert model.class_names == ["class0", "class1", "class2"]
    report = check_run(old)
    assert report.ok and DATAFACTS_FILE not in [f.path for f in report.files]


@pytest.mark.parametrize("damage", ["garbage", "tampered", "deleted"])
def test_a_damaged_file_is_judged_by_the_one_assessment(folder, tmp_path, capsys,
                                                        damage) -> None:
    run = copy_run(folder, tmp_path / "run")
    path = run.datafacts_path
    if damage == "garbage":
        path.write_bytes(b"\x00{not json")
    elif damage == "tampered":  # valid JSON that fails its checksum
        doc = json.loads(path.read_text())
        path.write_text(json.dumps({**doc, "mean": [0.5, 0.5, 0.5]}))
    else:
        path.unlink()
    state = MISSING if damage == "deleted" else DAMAGED
    entry = next(f for f in check_run(run).files if f.path == DATAFACTS_FILE)
    assert entry.state == state
    assert "rewritten from the training data on resume" in entry.cost
    assert main(["check", str(run.path)]) == 1
    capsys.readouterr()
    # export falls back to decoding (the data is still there), saying so when it is damaged
    assert main(["export", str(run.path), str(tmp_path / "m.pt")]) == 0
    out = capsys.readouterr().out
    assert ("is damaged" in out) == (damage != "deleted"), out
    assert "Traceback" not in out
    model = export.load_pruned(tmp_path / "m.pt")
    assert model.meta["input_normalization"] == decoded_normalization(run.config())
    # a resume of the finished run moves it aside, rewrites it, and retrains nothing
    rows = run.metrics()
    assert main(["run", "--resume", str(run.path), "--plain", "--no-estimate"]) == 0
    said = capsys.readouterr()
    assert f"{DATAFACTS_FILE} is {'missing' if damage == 'deleted' else 'damaged'}" in \
        said.out + said.err
    assert read_facts(run.path).facts == read_facts(folder.path).facts
    assert run.metrics() == rows
    assert check_run(run).ok
    assert bool(list(run.path.glob(f"{DATAFACTS_FILE}.damaged-*"))) == (damage != "deleted")


def test_a_faces_run_records_its_statistics_and_exports_without_its_folder(faces,
                                                                          tmp_path) -> None:
    cfg = faces.config()
    facts = read_facts(faces.path).facts
    data = load_data(cfg)
    assert facts.mean == (data.mean,) and facts.std == (data.std,)
    assert facts.class_names == ("ann", "bob", "cy") == data.class_names
    expected = decoded_normalization(cfg)
    run = copy_run(faces, tmp_path / "faces")
    moved = Path(cfg.data.root).rename(tmp_path / "gone")
    try:
        model = exported(run, tmp_path / "faces.pt")
    finally:
        moved.rename(cfg.data.root)
    assert model.meta["input_normalization"] == expected
    assert isinstance(model.meta["input_normalization"]["mean"], float)
    assert model.class_names == ["ann", "bob", "cy"]


def test_a_resume_keeps_the_first_record_and_warns_when_the_data_changed(folder,
                                                                        tmp_path) -> None:
    run = copy_run(folder, tmp_path / "run")
    first = read_facts(run.path).facts
    data = load_data(run.config())
    assert store.record_facts(run.path, data) is None  # same data: nothing said, kept
    data.mean = (0.1, 0.2, 0.3)
    note = store.record_facts(run.path, data)
    assert note and "mean changed" in note
    assert read_facts(run.path).facts == first


def test_the_record_reads_back_exactly_and_refuses_what_is_not_one(tmp_path) -> None:
    facts = DataFacts("folder", (3, 8, 8), 2, ("a", "b"), 10, (0.1 + 0.2, 1 / 3, 0.5),
                      (0.25, 0.3, 1.0))
    store.write_facts(tmp_path, facts)
    assert read_facts(tmp_path).facts == facts
    mnist = DataFacts("mnist", (784,), 10, tuple("0123456789"), 60, None, None)
    assert DataFacts.from_dict(json.loads(mnist.to_json())) == mnist
    doc = json.loads(facts.to_json())
    for bad in ({**doc, "schema": 2}, {**doc, "mean": "x"}, {**doc, "std": [1.0]},
                {k: v for k, v in doc.items() if k != "class_names"}, [doc]):
        with pytest.raises(ValueError):
            DataFacts.from_dict(bad)
    assert read_facts(tmp_path / "nowhere").state == MISSING
