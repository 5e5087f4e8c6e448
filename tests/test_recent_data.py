"""One decode per dataset per process: the launch estimate and the run share it; a change under
the data root, another data setting or streamed data decode again."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from prunetui import config
from prunetui.data import recent
from tests.test_faces_data import make_faces
from tests.test_folder_data import cfg as folder_cfg
from tests.test_folder_data import make_folder


@pytest.fixture
def decodes(monkeypatch) -> list[str]:
    """The datasets decoded, in order: each loader counts its calls (whoever calls it) and
    runs."""
    from prunetui.data import faces, folder, mnist

    seen: list[str] = []

    def counting(module, name):
        real = getattr(module, name)

        def loader(*args, **kwargs):
            seen.append(module.__name__.rsplit(".", 1)[-1])
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, loader)

    for module, name in ((mnist, "load_mnist"), (faces, "load_faces"), (folder, "load_folder")):
        counting(module, name)
    recent.forget()
    yield seen
    recent.forget()


def faces_cfg(root: Path, **data) -> config.Config:
    return config.Config(data=config.DataConfig(dataset="faces", root=str(root), image_size=40,
                                                crop=32, **data))


def test_same_settings_share_the_tensors_and_the_first_decode_time(tmp_path, decodes):
    root = make_faces(tmp_path / "faces", {"ann": 8, "bo": 8}, size=48)
    first, seconds = recent.load_recent(faces_cfg(root))
    again, seconds_again = recent.load_recent(faces_cfg(root))
    assert again is first and seconds_again == seconds > 0
    assert decodes == ["faces"]


def test_an_image_added_or_removed_or_another_setting_decodes_again(tmp_path, decodes):
    root = make_folder(tmp_path / "imgs", 3, 12)
    before = recent.load_recent(folder_cfg(root))[0].train_size
    class0 = root / "class0"
    stamp = os.stat(class0).st_mtime_ns
    make_folder(root, 3, 16)  # 4 more images in every class folder, none in the root
    os.utime(class0, ns=(stamp + 10**9, stamp + 10**9))  # filesystems with coarse mtimes
    assert recent.load_recent(folder_cfg(root))[0].train_size > before
    (class0 / "15.png").unlink()
    recent.load_recent(folder_cfg(root))
    recent.load_recent(folder_cfg(root, crop=24))
    assert decodes == ["folder"] * 4


def test_keep_false_decodes_without_keeping(tmp_path, decodes):
    """What a run on a GPU asks: its data moves to the device, a CPU copy would only hold RAM."""
    root = make_folder(tmp_path / "imgs", 3, 12)
    first = recent.load_recent(folder_cfg(root), keep=False)[0]
    assert recent.load_recent(folder_cfg(root))[0] is not first
    assert decodes == ["folder", "folder"]


def test_streamed_data_is_never_kept(tmp_path, decodes):
    root = make_folder(tmp_path / "imgs", 4, 30, size=40, mode="RGB")  # 1.4 MB as 3x64x64
    cfg = folder_cfg(root, memory_budget_mb=1, channels=3, image_size=64, crop=56)
    first = recent.load_recent(cfg)[0]
    assert first.storage == "streamed"
    assert recent.load_recent(cfg)[0] is not first and decodes == ["folder", "folder"]


def test_cli_run_with_its_measured_estimate_decodes_the_data_once(mnist_root, tmp_path,
                                                                   decodes, capsys,
                                                                   monkeypatch):
    from prunetui.cli import main

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # no calibration yet

    sets = {"data.root": str(mnist_root), "data.train_subset": 300, "train.iterations": 10,
            "train.eval_every": 10, "prune.rounds": 1, "prune.schemes": ["rewind"]}
    args = ["run", "quick", "--out", str(tmp_path), "--name", "r", "--plain"]
    for key, value in sets.items():
        args += ["--set", f"{key}={json.dumps(value)}"]
    assert main(args) == 0
    estimate_line = next(line for line in capsys.readouterr().out.splitlines()
                         if "Estimated time" in line)
    assert "measured" in estimate_line  # timed on the data, not read from a calibration
    assert decodes == ["mnist"]  # before: one for the run, one for the estimate
