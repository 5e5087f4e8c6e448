"""Export formats, load_pruned, shrinking, the default round choice and damaged files."""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from prunetui import config, export, store
from prunetui.data import load_data
from prunetui.experiment import Experiment
from prunetui.export import ExportError, index_dtype
from prunetui.nets.lenet import LeNet300100
from prunetui.nets.lightcnn import LightCNN9
from prunetui.shrink import ShrinkError, shrink
from prunetui.store import new_run
from tests.conftest import REPO, tiny_overrides
from tests.test_faces_data import make_faces

# --- real runs --------------------------------------------------------------------------------


def finished_run(cfg: config.Config, out: Path, name: str) -> store.RunDir:
    run = new_run(cfg, out, name)
    assert Experiment(run).execute() == store.FINISHED
    return run


@pytest.fixture(scope="module")
def lenet_run(mnist_root, tmp_path_factory) -> store.RunDir:
    overrides = tiny_overrides(mnist_root, **{"prune.schemes": ["rewind", "keep"]})
    cfg = config.apply_overrides(config.Config(), overrides)
    return finished_run(cfg, tmp_path_factory.mktemp("lenet"), "lenet")


@pytest.fixture(scope="module")
def lightcnn_run(tmp_path_factory) -> store.RunDir:
    root = make_faces(tmp_path_factory.mktemp("faces"), {"a": 8, "b": 8, "c": 8}, size=40)
    values = {
        "data.dataset": "faces", "data.root": str(root), "data.image_size": 40, "data.crop": 32,
        "model.arch": "lightcnn-9", "model.init": "kaiming-normal", "model.width": 0.25,
        "train.iterations": 6, "train.eval_every": 3, "train.batch_size": 8,
        "prune.rounds": 2, "prune.schemes": ["rewind"],
    }
    cfg = config.apply_overrides(config.Config(), list(values.items()))
    return finished_run(cfg, tmp_path_factory.mktemp("lightcnn"), "faces")


def model_input(src: export.Source, x: torch.Tensor, data) -> torch.Tensor:
    """Test images as the exported model takes them (shaped like the training images)."""
    x = data.eval_input(x)
    return x.reshape(-1, *src.input_shape())


@pytest.mark.parametrize("fmt", export.FORMATS)
@pytest.mark.parametrize("which", ["lenet", "lightcnn"])
def test_each_format_gives_the_masked_models_predictions_on_the_whole_test_set(
        which, fmt, request, tmp_path):
    run = request.getfixturevalue(f"{which}_run")
    src = export.load_source(run, export.choose(run, 2, run.config().prune.schemes[0]))
    assert src.remaining < 0.7
    data = load_data(src.cfg)
    x = model_input(src, data.test_x, data)
    with torch.inference_mode():
        expected = src.build()(x)
    path = tmp_path / f"{which}-{fmt}.pt"
    export.export(src, fmt, path)
    model = export.load_pruned(path)
    assert not model.training
    with torch.inference_mode():
        got = model(x)
    assert torch.equal(got.argmax(1), expected.argmax(1))
    if fmt == "shrunk":  # folded biases may round differently
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    else:
        assert torch.equal(got, expected)
    meta = model.meta
    assert (meta["run"], meta["round"], meta["scheme"], meta["replicate"]) == \
        (run.name, 2, src.scheme, 0)
    assert meta["remaining"] == pytest.approx(src.remaining)
    assert meta["config"]["model"]["arch"] == src.cfg.model.arch
    assert meta["torch_version"] == torch.__version__ and meta["prunetui_version"]
    assert meta["format"] == fmt
    if which == "lightcnn":  # raw stored images -> the run's centre crop and normalization
        torch.testing.assert_close(model.prepare(data.test_x), data.eval_input(data.test_x))


def test_loaded_model_scores_the_runs_accuracy_in_a_fresh_python(lenet_run, tmp_path):
    src = export.load_source(lenet_run, export.choose(lenet_run))
    path = tmp_path / "out.pt"
    export.export(src, "sparse", path)
    code = (
        "import sys, prunetui\n"
        "assert 'torch' not in sys.modules\n"
        f"m = prunetui.load_pruned({str(path)!r})\n"
        "import torch, torchvision\n"  # raw 0-255 test images, as a new user has them
        f"d = torchvision.datasets.MNIST({str(src.cfg.data.root)!r}, train=False)\n"
        "with torch.inference_mode():\n"
        "    acc = (m(m.prepare(d.data)).argmax(1) == d.targets).float().mean()\n"
        "print(acc.item(), m.meta['test_acc'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, check=True).stdout.split()
    assert float(out[0]) == pytest.approx(float(out[1]), abs=1e-6)
    last = max((r for r in lenet_run.metrics() if (r["round"], r["scheme"]) ==
                (src.round, src.scheme)), key=lambda r: r["iteration"])
    assert float(out[1]) == last["test_acc"]


def test_sparse_file_is_smaller_than_dense(lenet_run):
    src = export.load_source(lenet_run, export.choose(lenet_run, 2, "rewind"))
    sparse = len(export.build_export(src, "sparse").data)
    dense = len(export.build_export(src, "dense").data)
    # 64% left: bitmask (1 bit per weight) + 4 bytes per survivor is ~0.67 of 4 bytes per weight.
    assert sparse < 0.72 * dense



def test_an_export_of_the_same_round_is_byte_identical(lenet_run, tmp_path):
    """Files do not depend on when or how the segment was read: metric rows passed in give the
    same source as rows read by load_source itself."""
    metrics = lenet_run.metrics()
    choice = export.choose(lenet_run, 2, "keep")
    assert export.choose(lenet_run, 2, "keep", metrics=metrics) == choice
    read_here = export.load_source(lenet_run, choice)
    passed = export.load_source(lenet_run, choice, cfg=lenet_run.config(), metrics=metrics)
    assert (passed.remaining, passed.test_acc, passed.early_stop_test_acc) == \
        (read_here.remaining, read_here.test_acc, read_here.early_stop_test_acc)
    for fmt in export.FORMATS:
        first = export.export(read_here, fmt, tmp_path / f"a-{fmt}.pt").data
        assert (tmp_path / f"a-{fmt}.pt").read_bytes() == first
        assert export.build_export(passed, fmt).data == first
        assert export.build_export(passed, fmt, model=passed.build()).data == first


def test_a_checkpoint_without_a_result_is_refused(lenet_run, tmp_path):
    copy = store.RunDir(shutil.copytree(lenet_run.path, tmp_path / "copy"))
    path = copy.segment_checkpoint(0, 1, "keep")
    state = store.load_checkpoint(path)
    del state["result"]  # as in resume.pt: the segment never finished
    store.save_checkpoint(state, path)
    with pytest.raises(ExportError, match="holds no result"):
        export.load_source(copy, export.Choice(0, 1, "keep", ""))
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ExportError, match=re.escape(f"Cannot export from {path}")):
        export.load_source(copy, export.Choice(0, 1, "keep", ""))


# --- encodings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("largest", "dtype"), [
    (0, torch.uint8), (255, torch.uint8), (256, torch.int16), (32767, torch.int16),
    (32768, torch.int32), (2**31 - 1, torch.int32), (2**31, torch.int64)])
def test_index_dtype_is_the_narrowest_that_fits(largest, dtype):
    assert index_dtype(largest) == dtype


@pytest.mark.parametrize(("shape", "keep", "layout", "col_dtype"), [
    ((300, 784), 0.036, "csr", torch.int16),  # LeNet fc1 at 3.6%: columns < 784
    ((10, 100), 0.05, "csr", torch.uint8),  # columns < 256; at 20% a bitmask is smaller
    ((300, 784), 0.6, "bitmask", None),  # dense enough that one bit per weight is smaller
    ((16, 8, 3, 3), 0.03, "csr", torch.uint8),  # a convolution, flattened per filter
])
def test_sparse_encoding_round_trips_with_narrow_indices(shape, keep, layout, col_dtype):
    gen = torch.Generator().manual_seed(0)
    mask = torch.rand(shape, generator=gen) < keep
    weight = torch.randn(shape, generator=gen) * mask
    desc, parts = export.encode_sparse(weight, mask)
    assert desc["layout"] == layout
    assert parts["values"].numel() == int(mask.sum())
    if col_dtype is not None:
        assert parts["col"].dtype == col_dtype
        assert parts["crow"].dtype == index_dtype(int(mask.sum()))
    assert torch.equal(export.decode_sparse(desc, parts), weight)


# --- shrinking ----------------------------------------------------------------------------------


def lenet_with_dead_units() -> tuple[LeNet300100, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    net = LeNet300100().eval()
    state = net.state_dict()
    with torch.no_grad():
        state["fc1.weight"][:, :100] = 0  # 100 pixels nobody reads
        state["fc1.weight"][:40] = 0  # 40 fc1 units without inputs: constant relu(b), folded
        state["fc2.weight"][:, 250:] = 0  # 50 fc1 units nobody reads (10 overlap the above)
        state["fc3.weight"][:, :30] = 0  # 30 fc2 units nobody reads
        state["fc1.bias"][:40] = torch.linspace(-1, 1, 40)  # some constants are nonzero
    net.load_state_dict(state)
    return net, {k: v.clone() for k, v in state.items()}


def test_shrinking_lenet_removes_dead_units_and_pixels_and_keeps_the_function(tmp_path):
    net, state = lenet_with_dead_units()
    shrunk = shrink(state, export.chain_of(net))
    assert shrunk.report.units_after == {"fc1": 300 - 40 - 50, "fc2": 70}
    assert shrunk.report.inputs_after == 684 and shrunk.input_index.numel() == 684
    assert shrunk.state["fc1.weight"].shape == (210, 684)
    small = LeNet300100(in_features=684)
    small.fc1, small.fc2 = torch.nn.Linear(684, 210), torch.nn.Linear(210, 70)
    small.fc3 = torch.nn.Linear(70, 10)
    small.load_state_dict(shrunk.state)
    x = torch.randn(500, 784, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got = small.eval()(x[:, shrunk.input_index])
        torch.testing.assert_close(got, net(x), rtol=1e-5, atol=1e-5)


def test_shrinking_lightcnn_removes_unread_and_folds_constant_channels():
    torch.manual_seed(0)
    net = LightCNN9((1, 32, 32), 5, width=0.25).eval()
    state = net.state_dict()
    c2a, c2 = net.conv2a.weight.shape[0] // 2, net.conv2.weight.shape[0] // 2
    with torch.no_grad():
        state["conv2.weight"][:, :3] = 0  # 3 conv2a channels nobody reads: removed
        # 2 conv2 channels without inputs (both MFM halves) read by the 1x1 conv3a: folded
        state["conv2.weight"][[0, 1, c2, c2 + 1]] = 0
        # 1 conv2a channel without inputs, read by a 3x3 conv (zero padding): must stay
        state["conv2a.weight"][[5, c2a + 5]] = 0
    net.load_state_dict(state)
    shrunk = shrink(state, export.chain_of(net), unit_word="channels")
    assert shrunk.report.units_after["conv2a"] == c2a - 3
    assert shrunk.report.units_after["conv2"] == c2 - 2
    assert shrunk.report.removed == 5 and shrunk.input_index is None
    cfg = config.Config(data=config.DataConfig(dataset="faces", image_size=40, crop=32),
                        model=config.ModelConfig(arch="lightcnn-9", width=0.25))
    header = {"meta": {"config": config.to_dict(cfg), "input_shape": [1, 32, 32],
                       "num_classes": 5}}
    small = export.model_from(header, shrunk.state)
    x = torch.randn(16, 1, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(small(x), net(x), rtol=1e-5, atol=1e-5)


def test_a_layer_pruned_to_zero_units_gives_a_clear_message(lenet_run, tmp_path):
    net, state = lenet_with_dead_units()
    state["fc3.weight"].zero_()  # nothing reads fc2
    with pytest.raises(ShrinkError, match=r"Layer fc2 has no units left.*sparse or dense"):
        shrink(state, export.chain_of(net))
    src = export.load_source(lenet_run, export.choose(lenet_run, 2, "rewind"))
    src.weights["fc2.weight"].zero_()  # fc2 reads nothing from fc1
    src.masks["fc2.weight"].zero_()
    with pytest.raises(ExportError, match="Layer fc1 has no units left"):
        export.build_export(src, "shrunk")
    export.build_export(src, "sparse")  # the other formats still work


# --- damaged files ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def good_file(lenet_run, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("good") / "good.pt"
    export.export(export.load_source(lenet_run, export.choose(lenet_run, 1, "rewind")),
                  "sparse", path)
    return path


def test_truncated_file(good_file, tmp_path):
    data = good_file.read_bytes()
    for cut in (0, 100, len(data) // 2, len(data) - 10):
        bad = tmp_path / f"cut{cut}.pt"
        bad.write_bytes(data[:cut])
        with pytest.raises(ExportError, match="cannot be loaded"):
            export.load_pruned(bad)


def test_tampered_payload_fails_the_checksum(good_file, tmp_path):
    raw = torch.load(good_file, weights_only=True)
    raw["blob"][-5] ^= 1  # one bit of one surviving weight
    bad = tmp_path / "tampered.pt"
    torch.save(raw, bad)
    with pytest.raises(ExportError, match="SHA-256 checksum does not match"):
        export.load_pruned(bad)
    header = json.loads(raw["header"])
    raw = torch.load(good_file, weights_only=True)
    header["meta"]["round"] = 99
    raw["header"] = json.dumps(header)
    torch.save(raw, bad)
    with pytest.raises(ExportError, match="checksum"):
        export.load_pruned(bad)


class Boom:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_foreign_files_are_refused_without_running_code(lenet_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    checkpoint = lenet_run.segment_checkpoint(0, 1, "rewind")
    with pytest.raises(ExportError, match=r"not a prunetui export \(.*run checkpoint\); make "
                       "one with: prunetui export RUN OUT.pt"):
        export.load_pruned(checkpoint)
    (tmp_path / "evil.pt").write_bytes(pickle.dumps(Boom()))
    torch.save({"x": Boom()}, tmp_path / "evil2.pt")
    (tmp_path / "text.pt").write_text("hello")
    for name in ("evil.pt", "evil2.pt", "text.pt"):
        with pytest.raises(ExportError, match="cannot be loaded: it is not a prunetui export") \
                as caught:
            export.load_pruned(tmp_path / name)
        assert "weights_only" not in str(caught.value) and "trust" not in str(caught.value)
        assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert not (tmp_path / "PWNED").exists()
    with pytest.raises(ExportError, match="does not exist"):
        export.load_pruned(tmp_path / "missing.pt")


def test_newer_format_version_is_named(good_file, tmp_path):
    raw = torch.load(good_file, weights_only=True)
    raw["version"] = 2
    torch.save(raw, tmp_path / "v2.pt")
    with pytest.raises(ExportError, match="format version 2"):
        export.load_pruned(tmp_path / "v2.pt")


# --- the default choice -------------------------------------------------------------------------


def fake_run(tmp_path: Path, results: list[tuple[int, str, float, float]]) -> store.RunDir:
    """A run whose metrics give each (round, scheme) one evaluation: remaining, test acc."""
    run = store.create_run(tmp_path, "fake", config.dumps(config.Config()))
    for round_, scheme, remaining, acc in results:
        store.append_jsonl(run.metrics_path, {
            "replicate": 0, "round": round_, "scheme": scheme, "iteration": 10,
            "remaining": remaining, "val_loss": 0.1, "val_acc": acc, "test_acc": acc})
        path = run.segment_checkpoint(0, round_, scheme)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    return run


def test_default_choice_is_the_smallest_fraction_within_half_a_point(tmp_path):
    run = fake_run(tmp_path, [
        (0, "dense", 1.0, 0.980), (1, "rewind", 0.8, 0.981), (1, "reinit", 0.8, 0.979),
        (2, "rewind", 0.64, 0.9751), (2, "reinit", 0.64, 0.9749), (3, "rewind", 0.51, 0.960)])
    choice = export.choose(run)
    assert (choice.round, choice.scheme) == (2, "rewind")
    assert "0.5 points" in choice.reason and "98.00%" in choice.reason
    assert export.choose(run, scheme="reinit").round == 1  # round 2 reinit is 0.51 below
    assert export.choose(run, round_=1).scheme == "rewind"  # same fraction: more accurate
    only_bad = export.choose(run, round_=3)
    assert (only_bad.round, only_bad.scheme) == (3, "rewind") and "most accurate" in only_bad.reason
    with pytest.raises(ExportError, match="no finished round 7"):
        export.choose(run, round_=7)


# --- the command line ---------------------------------------------------------------------------


def test_cli_export_explains_its_choice_and_report_size_prints_the_table(lenet_run, tmp_path,
                                                                         capsys):
    from prunetui.cli import main

    out = tmp_path / "out.pt"
    assert main(["export", str(lenet_run.path), str(out)]) == 0
    text = capsys.readouterr().out
    choice = export.choose(lenet_run)
    assert f"Chose round {choice.round} ({choice.scheme}" in text and "0.5 points" in text
    assert export.load_pruned(out).meta["round"] == choice.round
    assert main(["export", str(lenet_run.path), str(tmp_path / "s.pt"), "--round", "1",
                 "--scheme", "keep", "--format", "shrunk"]) == 0
    assert "Shrinking removed" in capsys.readouterr().out
    assert main(["export", str(lenet_run.path), str(tmp_path / "x.pt"), "--round", "9"]) == 2
    err = capsys.readouterr().err
    assert "no finished round 9" in err and "Traceback" not in err
    assert main(["report", str(lenet_run.path), "--size", "--no-plot"]) == 0
    text = capsys.readouterr().out
    assert "size (KiB)" in text and "CPU latency" in text
