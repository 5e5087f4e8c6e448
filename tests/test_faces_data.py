"""Prepared-faces dataset: split.json, decoding, crop/flip augmentation, error messages."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from PIL import Image

from prunetui.config import Config, DataConfig, ModelConfig
from prunetui.data import DataError, load_data
from prunetui.data.faces import FaceData, load_faces
from prunetui.data.facesplit import SPLIT_FILE, allocate

SMALL = {"image_size": 40, "crop": 32}  # resized from 144: keeps every test fast


def face_image(person: int, index: int, size: int = 144) -> torch.Tensor:
    """A distinct, asymmetric uint8 image [1, size, size] (a flip or shift changes it)."""
    gen = torch.Generator().manual_seed(1000 * person + index)
    return torch.randint(0, 256, (1, size, size), dtype=torch.uint8, generator=gen)


def write_png(image: torch.Tensor, path: str) -> None:
    _, height, width = image.shape
    Image.frombytes("L", (width, height), image.numpy().tobytes()).save(path)


def make_faces(root: Path, counts: dict[str, int], size: int = 144) -> Path:
    for p, (person, n) in enumerate(sorted(counts.items())):
        folder = root / person
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            write_png(face_image(p, i, size), str(folder / f"{i + 1}.png"))
    return root


def cfg(root: Path, **kw) -> DataConfig:
    return DataConfig(dataset="faces", root=str(root), **{**SMALL, **kw})


@pytest.fixture
def faces(tmp_path: Path) -> Path:
    root = make_faces(tmp_path / "dst", {"alice": 10, "bob": 10, "carol": 10, "dave": 7})
    (root / "prepare_report.json").write_text("{}")
    (root / "alice" / "notes.txt").write_text("not an image")
    return root


def stored_split(root: Path) -> dict:
    return json.loads((root / SPLIT_FILE).read_text(encoding="utf-8"))


# --- the split ---------------------------------------------------------------------------------


def test_split_is_stratified_and_complete(faces: Path) -> None:
    data = load_faces(cfg(faces))
    doc = stored_split(faces)
    assert doc["fractions"] == [0.70, 0.15, 0.15] and doc["seed"] == 0
    assert sorted(doc["people"]) == ["alice", "bob", "carol", "dave"]
    for person, sets in doc["people"].items():
        names = sets["train"] + sets["validation"] + sets["test"]
        on_disk = sorted(f.name for f in (faces / person).glob("*.png"))
        assert sorted(names) == on_disk and len(set(names)) == len(names)
        assert all(sets[part] for part in ("train", "validation", "test")), person
    assert len(doc["people"]["alice"]["train"]) == 7  # 70% of 10
    assert data.class_names == ("alice", "bob", "carol", "dave") and data.num_classes == 4
    for part, y in (("train", data.train_y), ("validation", data.val_y), ("test", data.test_y)):
        per_class = [len(doc["people"][p][part]) for p in data.class_names]
        assert torch.bincount(y, minlength=4).tolist() == per_class
    assert data.train_x.dtype == torch.uint8 and data.train_x.shape[1:] == (1, 40, 40)
    assert data.train_y.dtype == torch.int64
    assert data.input_shape == (1, 32, 32)
    assert doc["images"] == {"train": data.train_size, "validation": len(data.val_y),
                             "test": len(data.test_y)}


def test_split_is_deterministic_and_per_person(tmp_path: Path) -> None:
    a = make_faces(tmp_path / "a", {"alice": 10, "bob": 9})
    b = make_faces(tmp_path / "b", {"alice": 10, "bob": 9, "zoe": 8})
    load_faces(cfg(a))
    load_faces(cfg(b))
    people_a, people_b = stored_split(a)["people"], stored_split(b)["people"]
    # Each person has their own seeded shuffle: adding zoe leaves alice and bob unchanged.
    assert people_b["alice"] == people_a["alice"] and people_b["bob"] == people_a["bob"]
    (a / SPLIT_FILE).unlink()
    load_faces(cfg(a))
    assert stored_split(a)["people"] == people_a


def test_split_is_written_once_and_reused(faces: Path) -> None:
    load_faces(cfg(faces))
    path = faces / SPLIT_FILE
    before = path.stat()
    doc = stored_split(faces)
    # Move one of alice's training images into her test set by hand: a reused split obeys it.
    moved = doc["people"]["alice"]["train"].pop()
    doc["people"]["alice"]["test"].append(moved)
    path.write_text(json.dumps(doc), encoding="utf-8")
    edited = path.stat()
    data = load_faces(cfg(faces, image_size=36))
    assert path.stat().st_mtime_ns == edited.st_mtime_ns and path.stat().st_ino == edited.st_ino
    assert int((data.test_y == 0).sum()) == len(doc["people"]["alice"]["test"])
    assert before.st_size != edited.st_size  # the hand edit really changed the file
    assert not list(faces.glob(f".{SPLIT_FILE}*"))  # no temp file left behind


def test_changed_fractions_is_an_error(faces: Path) -> None:
    load_faces(cfg(faces))
    with pytest.raises(DataError) as err:
        load_faces(cfg(faces, split=(0.8, 0.1, 0.1)))
    message = str(err.value)
    assert "[0.7, 0.15, 0.15]" in message and "[0.8, 0.1, 0.1]" in message
    assert "delete" in message and SPLIT_FILE in message


def test_added_or_removed_images_are_an_error(faces: Path) -> None:
    load_faces(cfg(faces))
    write_png(face_image(9, 9), str(faces / "bob" / "new.png"))
    with pytest.raises(DataError, match=r"1 new .*bob/new\.png.*delete"):
        load_faces(cfg(faces))
    (faces / "bob" / "new.png").unlink()
    (faces / "carol" / "3.png").unlink()
    with pytest.raises(DataError, match=r"missing: carol/3\.png"):
        load_faces(cfg(faces))


def test_a_new_person_is_an_error(faces: Path) -> None:
    load_faces(cfg(faces))
    make_faces(faces, {"erin": 5})
    with pytest.raises(DataError, match="5 new"):
        load_faces(cfg(faces))


def test_too_few_images_names_every_person(tmp_path: Path) -> None:
    root = make_faces(tmp_path / "dst", {"alice": 10, "bob": 2, "carol": 1, "dave": 3})
    with pytest.raises(DataError) as err:
        load_faces(cfg(root))
    message = str(err.value)
    assert "bob (2)" in message and "carol (1)" in message and "dave" not in message
    assert "at least 3" in message
    assert not (root / SPLIT_FILE).exists()
    # The documented way out: hide those folders; 3 images give one per set.
    (root / "bob").rename(root / ".bob")
    (root / "carol").rename(root / ".carol")
    data = load_faces(cfg(root))
    assert data.class_names == ("alice", "dave")
    dave = stored_split(root)["people"]["dave"]
    assert [len(dave[p]) for p in ("train", "validation", "test")] == [1, 1, 1]


def test_an_unused_set_needs_no_image(tmp_path: Path) -> None:
    root = make_faces(tmp_path / "dst", {"alice": 10, "bob": 2})
    data = load_faces(cfg(root, split=(0.8, 0.2, 0.0)))
    assert len(data.test_y) == 0 and data.test_x.shape == (0, 1, 40, 40)
    assert stored_split(root)["people"]["bob"]["test"] == []


@pytest.mark.parametrize(("n", "expected"), [
    (100, [70, 15, 15]), (20, [14, 3, 3]), (3, [1, 1, 1]), (4, [2, 1, 1]), (2, None), (0, None),
])
def test_allocate(n: int, expected: list[int] | None) -> None:
    assert allocate(n, (0.7, 0.15, 0.15), random.Random(0)) == expected


def test_allocate_breaks_ties_both_ways() -> None:
    # 10 images: 7 + 1.5 + 1.5; the odd image goes to validation for some people, test for others.
    results = {tuple(allocate(10, (0.7, 0.15, 0.15), random.Random(s))) for s in range(20)}
    assert results == {(7, 2, 1), (7, 1, 2)}


# --- decoding ----------------------------------------------------------------------------------


def test_full_size_images_are_not_resized(tmp_path: Path) -> None:
    root = make_faces(tmp_path / "dst", {"alice": 3, "bob": 3})
    data = load_faces(cfg(root, image_size=144, crop=128))
    people = stored_split(root)["people"]
    first = people["alice"]["train"][0]
    expected = face_image(0, int(first.split(".")[0]) - 1)
    assert torch.equal(data.train_x[0], expected)


def test_non_square_image_is_an_error(tmp_path: Path) -> None:
    root = make_faces(tmp_path / "dst", {"alice": 3, "bob": 3})
    write_png(torch.zeros((1, 112, 92), dtype=torch.uint8), str(root / "bob" / "1.png"))
    with pytest.raises(DataError, match=r"92x112.*prunetui prepare"):
        load_faces(cfg(root))


def test_load_data_dispatches_and_to_keeps_the_type(faces: Path) -> None:
    config = Config(data=cfg(faces), model=ModelConfig(arch="lightcnn-9"))
    data = load_data(config).to("cpu")
    assert isinstance(data, FaceData) and data.augmented
    assert data.crop == 32 and data.std > 0


# --- augmentation and evaluation inputs --------------------------------------------------------


def windows(image: torch.Tensor, crop: int) -> list[torch.Tensor]:
    """Every crop of ``image`` [1, S, S] and its mirror image."""
    size = image.shape[-1]
    out = []
    for top in range(size - crop + 1):
        for left in range(size - crop + 1):
            w = image[:, top:top + crop, left:left + crop]
            out += [w, w.flip(-1)]
    return out


def test_train_batch_takes_random_crops_and_flips(faces: Path) -> None:
    data = load_faces(cfg(faces))
    idx = torch.arange(data.train_size).flip(0)
    x, y = data.train_batch(idx, torch.Generator().manual_seed(3))
    assert x.shape == (data.train_size, 1, 32, 32) and x.dtype == torch.float32
    assert torch.equal(y, data.train_y[idx])
    center = data.eval_input(data.train_x[idx])
    flipped = 0
    for k, i in enumerate(idx.tolist()):
        source = data._normalize(data.train_x[i])  # the whole stored image
        matches = [j for j, w in enumerate(windows(source, 32)) if torch.equal(w, x[k])]
        assert matches, f"sample {k} is not a crop of image {i}"
        flipped += matches[0] % 2
    assert 0 < flipped < len(idx)  # both flipped and unflipped samples occur
    assert not torch.equal(x, center)  # offsets are random, not always the center


def test_train_batch_is_deterministic_per_generator(faces: Path) -> None:
    data = load_faces(cfg(faces))
    idx = torch.arange(16)
    a, _ = data.train_batch(idx, torch.Generator().manual_seed(7))
    b, _ = data.train_batch(idx, torch.Generator().manual_seed(7))
    c, _ = data.train_batch(idx, torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_eval_input_is_a_normalized_center_crop(faces: Path) -> None:
    data = load_faces(cfg(faces))
    x = data.eval_input(data.val_x)
    assert x.shape == (len(data.val_y), 1, 32, 32) and x.dtype == torch.float32
    expected = (data.val_x[..., 4:36, 4:36].float() / 255 - data.mean) / data.std
    torch.testing.assert_close(x, expected)
    train = (data.train_x.double() / 255 - data.mean) / data.std
    assert abs(float(train.mean())) < 1e-6 and abs(float(train.std()) - 1) < 1e-6


# --- error messages ----------------------------------------------------------------------------


def test_missing_root_says_how_to_prepare(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"does not exist.*prunetui prepare SRC DST"):
        load_faces(cfg(tmp_path / "nowhere"))


def test_root_without_person_folders_says_how_to_prepare(tmp_path: Path) -> None:
    root = tmp_path / "dst"
    (root / "empty_person").mkdir(parents=True)
    (root / "prepare_report.json").write_text("{}")
    with pytest.raises(DataError, match=r"no person folders.*prunetui prepare SRC DST"):
        load_faces(cfg(root))


def test_loose_pngs_need_person_folders(tmp_path: Path) -> None:
    root = tmp_path / "dst"
    root.mkdir()
    write_png(face_image(0, 0), str(root / "a.png"))
    with pytest.raises(DataError, match="one folder per person"):
        load_faces(cfg(root))


def test_root_one_level_too_high_points_at_the_prepared_folder(tmp_path: Path) -> None:
    make_faces(tmp_path / "data" / "myfaces", {"alice": 3, "bob": 3})
    with pytest.raises(DataError, match=r"data\.root = .*myfaces"):
        load_faces(cfg(tmp_path / "data"))


def test_one_person_is_not_enough(tmp_path: Path) -> None:
    root = make_faces(tmp_path / "dst", {"alice": 5})
    with pytest.raises(DataError, match="at least 2 people"):
        load_faces(cfg(root))


def test_damaged_split_file_says_to_delete_it(faces: Path) -> None:
    (faces / SPLIT_FILE).write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match=r"not a valid split file.*Delete it"):
        load_faces(cfg(faces))


def test_unwritable_folder_cannot_hold_the_split(faces: Path, monkeypatch) -> None:
    from prunetui import fileio

    def refuse(path: Path, text: str) -> None:
        raise fileio.StoreError(f"Cannot write {path}: Permission denied.")

    monkeypatch.setattr(fileio, "atomic_write_text", refuse)
    with pytest.raises(DataError, match=r"Permission denied.*writable"):
        load_faces(cfg(faces))
