"""PrunedModel.prepare reproduces the run's evaluation transform; predict names the classes."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import torch
from PIL import Image

from prunetui import config, export, store
from prunetui.data import load_data
from prunetui.data.faces import decode_image
from prunetui.data.facesplit import SPLIT_FILE
from prunetui.data.mnist import class_names
from prunetui.experiment import Experiment
from prunetui.export import ExportError
from prunetui.store import new_run
from tests.conftest import tiny_overrides
from tests.test_faces_data import make_faces

FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot"]


def exported(cfg: config.Config, out: Path) -> tuple[export.PrunedModel, export.Source]:
    run = new_run(cfg, out, "run")
    assert Experiment(run).execute() == store.FINISHED
    src = export.load_source(run, export.choose(run))
    export.export(src, "sparse", out / "model.pt")
    return export.load_pruned(out / "model.pt"), src


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """A faces run trained at image_size 48 on the 144x144 images prunetui prepare writes."""
    base = tmp_path_factory.mktemp("faces")
    root = make_faces(base / "dst", {"ann": 6, "bob": 6, "cy": 6}, size=144)
    values = {
        "data.dataset": "faces", "data.root": str(root), "data.image_size": 48, "data.crop": 40,
        "model.arch": "lightcnn-9", "model.init": "kaiming-normal", "model.width": 0.25,
        "train.iterations": 4, "train.eval_every": 2, "train.batch_size": 8,
        "prune.rounds": 1, "prune.schemes": ["rewind"],
    }
    cfg = config.apply_overrides(config.Config(), list(values.items()))
    model, src = exported(cfg, base)
    return model, src, load_data(src.cfg), root


@pytest.fixture(scope="module")
def digits(mnist_root, tmp_path_factory):
    cfg = config.apply_overrides(config.Config(), tiny_overrides(
        mnist_root, **{"prune.rounds": 1, "prune.schemes": ["rewind"]}))
    model, src = exported(cfg, tmp_path_factory.mktemp("digits"))
    return model, src, load_data(src.cfg)


def test_faces_prepare_is_the_evaluation_transform_of_the_runs_own_test_files(faces):
    model, _, data, root = faces
    split = json.loads((root / SPLIT_FILE).read_text())["people"]
    paths = [root / p / name for p in data.class_names for name in split[p]["test"]]
    expected = data.eval_input(data.test_x)
    assert expected.shape[-2:] == (40, 40)
    assert torch.equal(model.prepare(paths), expected)  # 144x144 files, resized to 48 as trained
    assert torch.equal(model.prepare([str(p) for p in paths]), expected)
    assert torch.equal(model.prepare(data.test_x), expected)  # images as stored (N x 1 x S x S)
    assert torch.equal(model.prepare([Image.open(p) for p in paths]), expected)
    stored = torch.frombuffer(bytearray(Image.open(paths[0]).tobytes()), dtype=torch.uint8)
    naive = data.eval_input(stored.view(1, 1, 144, 144))  # the bug: crop 40 of 144, no resize
    assert naive.shape == expected[:1].shape and not torch.equal(naive, expected[:1])


def test_faces_prepare_takes_any_size_and_mode(faces, tmp_path):
    model, _, data, root = faces
    gray = Image.open(next((root / "ann").glob("*.png")))
    rgb = Image.merge("RGB", [gray, gray.transpose(Image.Transpose.FLIP_LEFT_RIGHT), gray])
    files = {"rgb.png": rgb, "rgba.png": rgb.convert("RGBA").resize((90, 90)),
             "small.png": gray.resize((30, 30)), "big.png": gray.resize((200, 200)),
             "palette.png": rgb.convert("P")}
    for name, im in files.items():
        im.save(tmp_path / name)
    paths = [tmp_path / name for name in files]
    # The reference: what training would have made of these files in a prepared folder.
    expected = data.eval_input(torch.stack([decode_image(p, 48) for p in paths]))
    assert torch.equal(model.prepare(paths), expected)
    chw = torch.frombuffer(bytearray(rgb.tobytes()), dtype=torch.uint8).view(144, 144, 3)
    chw = chw.permute(2, 0, 1)
    with pytest.raises(ExportError, match="ambiguous for this gray model"):
        model.prepare(chw)  # one colour image, or three gray ones: never a silent guess
    assert torch.equal(model.prepare([chw]), expected[:1])  # in a list: one C x H x W image
    assert torch.equal(model.prepare(chw.float()[None]), expected[:1])  # float N x C x H x W
    wide = Image.new("L", (200, 144))
    wide.paste(gray, (28, 0))  # a non-square image: its centre square is used
    assert torch.equal(model.prepare(wide), data.eval_input(decode_image(
        next((root / "ann").glob("*.png")), 48)[None]))


def test_class_names_are_recorded(faces, digits, tmp_path):
    model, src, _, _ = faces
    assert model.meta["class_names"] == ["ann", "bob", "cy"] == model.class_names
    assert digits[0].meta["class_names"] == [str(d) for d in range(10)]
    assert list(class_names("fashion-mnist")) == FASHION
    # Files exported before class names were recorded still load; names are the indices.
    header, tensors = export.read_bytes(export.build_export(src, "shrunk").data)
    del header["meta"]["class_names"]
    old = tmp_path / "old.pt"
    old.write_bytes(export.to_bytes({k: v for k, v in header.items() if k != "tensors"},
                                    tensors))
    loaded = export.load_pruned(old)
    assert loaded.class_names == ["0", "1", "2"]
    assert {name for name, _ in loaded.predict(torch.zeros(1, 144, 144), top=3)[0]} == \
        {"0", "1", "2"}


def test_predict_gives_top_k_names_and_probabilities_highest_first(faces):
    model, _, data, _ = faces
    out = model.predict(data.test_x, top=2)
    assert len(out) == len(data.test_x) and all(len(row) == 2 for row in out)
    for row in out:
        probs = [p for _, p in row]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
        assert {name for name, _ in row} <= {"ann", "bob", "cy"}
    assert [len(r) for r in model.predict(data.test_x[:2], top=10)] == [3, 3]
    full = model.predict(data.test_x[:1], top=3)[0]
    assert sum(p for _, p in full) == pytest.approx(1, abs=1e-5)


def test_mnist_png_files_predict_as_the_run_evaluates(digits, tmp_path):
    model, _, data = digits
    import torchvision

    raw = torchvision.datasets.MNIST(str(data_root(model)), train=False).data[:64]
    paths = []
    for i, image in enumerate(raw):
        Image.fromarray(image.numpy()).save(tmp_path / f"{i}.png")
        paths.append(tmp_path / f"{i}.png")
    x = model.prepare(paths)
    assert torch.equal(x, data.test_x[:64].reshape(64, 1, 28, 28))  # the run's eval tensors
    with torch.inference_mode():
        expected = model(data.eval_input(data.test_x[:64])).argmax(1).tolist()
    got = model.predict(paths, top=3)
    assert [row[0][0] for row in got] == [str(i) for i in expected]
    assert all(len(row) == 3 and 0 < sum(p for _, p in row) <= 1 + 1e-6 for row in got)
    assert torch.equal(model.prepare(raw), x)  # N x H x W uint8, as torchvision has them
    with pytest.raises(ExportError, match=r"Pass a batch as N x 1 x H x W"):
        model.prepare(raw[:3])  # three digits, or one RGB image? (it used to answer once)
    assert torch.equal(model.prepare(raw[:3, None]), x[:3])
    assert torch.equal(model.prepare(raw[:5]), x[:5])  # 5 cannot be a colour image
    assert model.prepare(Image.fromarray(raw[0].numpy()).resize((56, 56))).shape == (1, 1, 28, 28)


def data_root(model: export.PrunedModel) -> str:
    return model.meta["config"]["data"]["root"]


class Boom:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_foreign_files_are_named_without_torchs_unsafe_advice(digits, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _, src, _ = digits
    checkpoint = src.run.segment_checkpoint(0, 1, "rewind")
    (tmp_path / "evil.pt").write_bytes(pickle.dumps(Boom()))
    torch.save({"x": Boom()}, tmp_path / "evil2.pt")
    (tmp_path / "text.pt").write_text("hello")
    for path in (tmp_path / "evil.pt", tmp_path / "evil2.pt", tmp_path / "text.pt", checkpoint):
        for load in (export.load_pruned, export.read_file):
            with pytest.raises(ExportError) as caught:
                load(path)
            message = str(caught.value)
            assert "not a prunetui export" in message, message
            assert message.endswith("make one with: prunetui export RUN OUT.pt"), message
            assert "weights_only" not in message and "trust" not in message, message
        if path != checkpoint:  # a run checkpoint that is not one
            with pytest.raises(store.DamagedFile) as caught:
                store.load_checkpoint(path)
            assert "weights_only" not in str(caught.value), str(caught.value)
            assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert not (tmp_path / "PWNED").exists()
