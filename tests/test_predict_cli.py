"""``prunetui predict``: accuracy on labelled folders, bad and empty inputs, faces in photos."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from prunetui import config, export, store
from prunetui.cli import main as cli_main
from prunetui.data import load_data
from prunetui.data.prepare import REPORT_FILE, prepare_faces
from prunetui.experiment import Experiment
from prunetui.predict import predict_images
from prunetui.store import new_run
from tests.conftest import tiny_overrides
from tests.prepare_samples import LFW, need_faces

DIGITS = 300  # MNIST test images written as PNG files
ACCURACY = re.compile(r"Accuracy: ([\d.]+)% \((\d+) of (\d+) labelled images\)")


def exported(cfg: config.Config, out: Path) -> tuple[Path, export.Source]:
    run = new_run(cfg, out, "run")
    assert Experiment(run).execute() == store.FINISHED
    src = export.load_source(run, export.choose(run))
    export.export(src, "sparse", out / "model.pt")
    return out / "model.pt", src


def predict(capsys, *args: str) -> tuple[int, str, str]:
    code = cli_main(["predict", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def digits(mnist_root, tmp_path_factory):
    """A tiny MNIST run's export, and the first DIGITS test images as <digit>/<i>.png."""
    import torchvision

    base = tmp_path_factory.mktemp("digits")
    cfg = config.apply_overrides(config.Config(), tiny_overrides(
        mnist_root, **{"prune.rounds": 1, "prune.schemes": ["rewind"]}))
    path, src = exported(cfg, base)
    test = torchvision.datasets.MNIST(str(mnist_root), train=False)
    folder = base / "pngs"
    for i in range(DIGITS):
        (folder / str(int(test.targets[i]))).mkdir(parents=True, exist_ok=True)
        Image.fromarray(test.data[i].numpy()).save(folder / str(int(test.targets[i])) / f"{i}.png")
    return path, src, folder


def test_mnist_pngs_score_what_the_model_scores_on_those_images(digits, capsys, tmp_path):
    path, src, folder = digits
    data = load_data(src.cfg)
    model = export.load_pruned(path)
    with torch.inference_mode():  # the run's own evaluation of the same test images
        logits = model(data.eval_input(data.test_x[:DIGITS]).reshape(DIGITS, 1, 28, 28))
    expected = int((logits.argmax(1) == data.test_y[:DIGITS]).sum())
    code, out, _ = predict(capsys, path, folder, "--top", "2", "--csv", tmp_path / "p.csv")
    assert code == 0, out
    found = ACCURACY.search(out)
    assert found and (int(found[2]), int(found[3])) == (expected, DIGITS), out
    assert float(found[1]) == pytest.approx(100 * expected / DIGITS, abs=0.005)
    assert f"{100 * model.meta['test_acc']:.2f}% on the run's test set" in out
    lines = [line for line in out.splitlines() if line.startswith("pngs/")]
    first = next(line for line in lines if line.startswith("pngs/7/0.png"))
    assert len(lines) == DIGITS and re.fullmatch(r"pngs/7/0\.png: \d [\d.]+%  \d [\d.]+%", first)
    assert "Confusions" in out or expected == DIGITS
    rows = (tmp_path / "p.csv").read_text().splitlines()
    assert len(rows) == DIGITS + 1 and rows[0].startswith("file,face,x1")
    result = predict_images(model, [folder])  # the engine, for the same numbers
    accuracy = result.accuracy()
    assert accuracy is not None and (accuracy.correct, accuracy.total) == (expected, DIGITS)
    assert sum(s.images for s in accuracy.per_class.values()) == DIGITS


def test_bad_model_files_exit_2_with_a_clear_message(digits, capsys, tmp_path):
    _, src, folder = digits
    (tmp_path / "text.pt").write_text("hello")
    checkpoint = src.run.segment_checkpoint(0, 1, "rewind")
    for bad in (tmp_path / "text.pt", checkpoint, tmp_path / "missing.pt"):
        code, _, err = predict(capsys, bad, folder)
        assert code == 2, bad
        assert err.startswith("error:") and "Traceback" not in err, err
        assert "prunetui export" in err or "No such file" in err or "not" in err, err


def test_no_usable_input_exits_2(digits, capsys, tmp_path):
    path, _, _ = digits
    (tmp_path / "empty").mkdir()
    code, _, err = predict(capsys, path, tmp_path / "empty")
    assert code == 2 and "no image found" in err, err
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("not an image")
    (junk / "bad.png").write_bytes(b"not a png at all")
    (junk / "empty.png").write_bytes(b"")
    code, out, err = predict(capsys, path, junk, tmp_path / "nowhere")
    assert code == 2 and "no usable image" in err, err
    assert "skipped junk/bad.png: not_an_image" in out and "junk/empty.png: empty_file" in out
    assert "nowhere" in out and "1 non-image files ignored" in out


def test_a_corrupt_image_is_listed_and_the_rest_go_on(digits, capsys, tmp_path):
    path, _, folder = digits
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for png in sorted((folder / "7").glob("*.png"))[:3]:
        shutil.copyfile(png, mixed / png.name)
    good = (folder / "1").glob("*.png").__next__().read_bytes()
    (mixed / "truncated.png").write_bytes(good[: len(good) // 2])
    code, out, _ = predict(capsys, path, mixed)
    assert code == 0, out
    assert len([line for line in out.splitlines() if line.startswith("mixed/")]) == 3
    assert "skipped mixed/truncated.png: corrupt" in out
    assert "3 images classified" in out and "Accuracy" not in out  # "mixed" is no class


# --- faces ------------------------------------------------------------------------------------

PEOPLE = ("Colin_Powell", "George_W_Bush", "Tony_Blair")


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """Real LFW photos of three people, prepared by prepare_faces, a tiny LightCNN run on the
    crops, and its export."""
    shared = need_faces()
    base = tmp_path_factory.mktemp("faces")
    photos = base / "photos"
    for person in PEOPLE:
        (photos / person).mkdir(parents=True)
        for photo in sorted((shared / LFW / person).glob("*.jpg"))[:10]:
            shutil.copyfile(photo, photos / person / photo.name)
    gradient = Image.linear_gradient("L").resize((200, 200))
    gradient.save(photos / PEOPLE[0] / "gradient.png")
    prepare_faces(photos, base / "faces", workers=1)
    values = {
        "data.dataset": "faces", "data.root": str(base / "faces"), "data.image_size": 48,
        "data.crop": 40, "model.arch": "lightcnn-9", "model.init": "kaiming-normal",
        "model.width": 0.25, "train.iterations": 6, "train.eval_every": 3,
        "train.batch_size": 8, "prune.rounds": 1, "prune.schemes": ["rewind"],
    }
    path, src = exported(config.apply_overrides(config.Config(), list(values.items())), base)
    return path, src, photos, base / "faces"


def test_the_export_records_how_the_faces_were_prepared(faces):
    import json

    path, _, _, prepared = faces
    recorded = json.loads((prepared / REPORT_FILE).read_text())["settings"]
    model = export.load_pruned(path)
    assert model.face_preparation == recorded
    assert recorded["output_size"] == 144 and recorded["margin"] == 0.2


def test_prepared_faces_score_what_the_run_evaluates(faces, capsys):
    path, src, _, prepared = faces
    model = export.load_pruned(path)
    data = load_data(src.cfg)
    with torch.inference_mode():
        hits = (model(data.eval_input(data.test_x)).argmax(1) == data.test_y)
    assert float(hits.float().mean()) == pytest.approx(model.meta["test_acc"], abs=1e-6)
    result = predict_images(model, [prepared])  # a prepared folder: whole crops, no detection
    assert all(f.box is None for r in result.images for f in r.faces)
    accuracy = result.accuracy()
    assert accuracy is not None and accuracy.parts["test"] == (int(hits.sum()), len(hits))
    code, out, _ = predict(capsys, path, prepared, "--quiet")
    assert code == 0
    assert f"test {100 * hits.float().mean():.2f}% ({int(hits.sum())}/{len(hits)})" in out, out


def test_raw_photos_give_a_line_per_face_with_a_box_and_names(faces, capsys):
    path, _, photos, _ = faces
    code, out, _ = predict(capsys, path, photos, "--top", "2")
    assert code == 0, out
    face_lines = [line for line in out.splitlines() if " face " in line and " box " in line]
    assert len(face_lines) >= 30  # every photo has a face; some have more
    pattern = re.compile(r"photos/(\w+)/\S+ face \d+/\d+ box \d+,\d+,\d+,\d+ \(p=[\d.]+\): "
                         r"(\w+) [\d.]+%  (\w+) [\d.]+%")
    for line in face_lines:
        found = pattern.fullmatch(line)
        assert found and {found[2], found[3]} <= set(PEOPLE), line
    assert "gradient.png: no_face" in out and "Accuracy:" in out
    code, out, _ = predict(capsys, path, photos, "--faces", "largest", "--quiet")
    assert code == 0 and re.search(r"\(\d+ of 30 labelled images\)", out), out


def test_an_export_without_recorded_preparation_uses_the_defaults(faces, tmp_path, capsys):
    path, _, photos, _ = faces
    header, tensors = export.read_file(path)
    del header["meta"]["face_preparation"]
    old = tmp_path / "old.pt"
    old.write_bytes(export.to_bytes(header, tensors))
    one = tmp_path / "one"
    one.mkdir()
    shutil.copyfile(next((photos / PEOPLE[2]).glob("*.jpg")), one / "a.jpg")
    code, out, _ = predict(capsys, old, one)
    assert code == 0 and "does not record how its faces were prepared" in out, out
    assert re.search(r"one/a\.jpg face 1/\d box ", out), out
