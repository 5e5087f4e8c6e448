"""``prunetui prepare``: every awkward input is reported, SRC is untouched, runs resume exactly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from prunetui.cli import main as cli_main
from prunetui.data.prepare import (
    JOURNAL_FILE,
    REASONS,
    REPORT_FILE,
    PrepareError,
    Settings,
    Skip,
    choose_faces,
    describe_prepared,
    load_for_detection,
    output_names,
    prepare_faces,
    square_box,
    to_rgb,
)
from prunetui.events import PrepareFinished, PrepareProgress, PrepareStarted
from tests.prepare_samples import (
    EXPECTED,
    PEOPLE,
    build_source,
    lfw,
    need_faces,
    outputs,
    side_by_side,
    snapshot,
)


@pytest.fixture(scope="module")
def src(tmp_path_factory) -> Path:
    return build_source(need_faces(), tmp_path_factory.mktemp("prep") / "src")


@pytest.fixture(scope="module")
def reference(src, tmp_path_factory):
    """One uninterrupted default run: (dst, report, events, SRC snapshot taken before it)."""
    before = snapshot(src)
    dst = tmp_path_factory.mktemp("prep") / "dst"
    events: list = []
    report = prepare_faces(src, dst, on_event=events.append)
    return dst, report, events, before


def gray(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path), dtype=np.float64).ravel()


# --- one full run ---------------------------------------------------------------------------


def test_every_entry_gets_faces_or_its_reason(reference):
    dst, report, _, _ = reference
    got = {s.path: s.reason for s in report.skipped}
    assert got == {path: reason for path, reason in EXPECTED.items() if reason}
    for s in report.skipped:
        assert s.reason in REASONS and s.message
    for path, reason in EXPECTED.items():
        person, _, name = path.partition("/")
        assert (dst / person / f"{name}.png").is_file() == (reason is None and bool(name)), path
    assert report.faces_saved == sum(r is None for r in EXPECTED.values())
    assert report.photos == len(EXPECTED) and report.pending == 0 and not report.cancelled


def test_src_is_untouched(src, reference):
    assert snapshot(src) == reference[3]


def test_outputs_are_144_gray_pngs_loadable_by_imagefolder(reference):
    from torchvision.datasets import ImageFolder

    dst, report, _, _ = reference
    files = outputs(dst)
    assert len(files) == report.faces_saved
    for rel in files:
        with Image.open(dst / rel) as im:
            assert (im.format, im.size, im.mode) == ("PNG", (144, 144), "L"), rel
    folder = ImageFolder(str(dst))
    assert folder.classes == ["celeb", "colin", "tony"]  # no empty class folder
    assert len(folder) == report.faces_saved


def test_report_file_counts_people_and_reasons(reference):
    dst, report, _, _ = reference
    data = json.loads((dst / REPORT_FILE).read_text())
    assert data == json.loads(report.to_json())
    assert sorted(data["people"]) == PEOPLE
    assert data["people"]["empty_person"] == {"photos": 0, "faces_saved": 0, "skipped": {}}
    assert data["people_without_faces"] == ["empty_person"]
    tony = data["people"]["tony"]
    tony_entries = [p for p in EXPECTED if p.startswith("tony/")]
    assert tony["photos"] == len(tony_entries)
    assert tony["faces_saved"] + sum(tony["skipped"].values()) == tony["photos"]
    assert tony["skipped"]["no_face"] == 2
    assert data["totals"]["skipped_by_reason"]["hidden"] == 2
    assert describe_prepared(dst) == [("celeb", 1), ("colin", 3), ("tony", 13)]


def test_every_variant_of_one_photo_gives_that_face(reference):
    """Formats, modes, EXIF rotation and a 3000 px copy all crop the same face: a wrong
    orientation, a clipped 16-bit image or a box not mapped back to full size would not."""
    dst, _, _, _ = reference
    tony = dst / "tony"
    plain = gray(tony / "Tony_Blair_0001.jpg.png")
    for name in ("bmp.bmp", "rgba.png", "cmyk.jpg", "gray16.png", "gray16_8bit.png",
                 "first_frame.gif", "webp.webp", "rotated.jpg", "huge.jpg"):
        assert np.corrcoef(plain, gray(tony / f"{name}.png"))[0, 1] > 0.8, name
    for other in ("a.jpg", "a.png"):  # other photos of the same man: clearly different crops
        assert np.corrcoef(plain, gray(tony / f"{other}.png"))[0, 1] < 0.6, other


def test_same_stem_in_two_formats_gives_two_files(reference):
    tony = reference[0] / "tony"
    assert (tony / "a.jpg.png").read_bytes() != (tony / "a.png.png").read_bytes()


def test_events(reference):
    _, report, events, _ = reference
    started = [e for e in events if isinstance(e, PrepareStarted)]
    progress = [e for e in events if isinstance(e, PrepareProgress)]
    finished = [e for e in events if isinstance(e, PrepareFinished)]
    assert len(started) == 1 and len(finished) == 1
    assert started[0].people == len(PEOPLE) and started[0].total == report.processed
    assert [e.done for e in progress] == list(range(1, report.processed + 1))
    assert progress[-1].faces_saved == report.faces_saved == finished[0].faces_saved
    assert {e.file: e.skipped_reason for e in progress}["truncated.jpg"] == "corrupt"
    assert (finished[0].photos, finished[0].skipped) == (report.photos, len(report.skipped))


# --- re-runs --------------------------------------------------------------------------------


def test_rerun_does_no_work_and_changes_nothing(src, reference, tmp_path):
    dst = tmp_path / "dst"
    shutil.copytree(reference[0], dst)
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in dst.glob("*/*")}
    events: list = []
    report = prepare_faces(src, dst, on_event=events.append)
    assert (report.processed, report.reused) == (0, reference[1].processed)
    assert report.device is None  # the detector was never even loaded
    assert not [e for e in events if isinstance(e, PrepareProgress)]
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in dst.glob("*/*")} == before
    assert report.to_dict()["totals"] == reference[1].to_dict()["totals"]


def test_interrupted_and_crashed_runs_resume_to_the_same_result(src, reference, tmp_path):
    dst = tmp_path / "dst"
    progress: list = []

    def count(event) -> None:
        if isinstance(event, PrepareProgress):
            progress.append(event)

    stopped = prepare_faces(src, dst, on_event=count, should_stop=lambda: len(progress) >= 5)
    assert stopped.cancelled and stopped.pending > 0
    assert json.loads((dst / REPORT_FILE).read_text())["complete"] is False

    def crash(event) -> None:  # a kill in the middle of the next run
        count(event)
        if len(progress) == stopped.processed + 4:
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):  # batch_size 2 is overruled by the DST's 8
        prepare_faces(src, dst, batch_size=2, on_event=crash)
    assert not list(dst.glob("*/.*.tmp"))
    with (dst / JOURNAL_FILE).open("a") as fh:  # what a kill during a journal write leaves
        fh.write('{"path": "tony/huge.jpg", "si')
    (dst / "tony" / ".huge.jpg.png.999.tmp").write_bytes(b"half a png")

    logs: list = []
    final = prepare_faces(src, dst, batch_size=2, on_event=logs.append)
    assert any("Continuing with batch size 8" in getattr(e, "message", "") for e in logs)
    assert final.reused > 0 and not final.cancelled and final.pending == 0
    assert outputs(dst) == outputs(reference[0])
    assert final.to_dict()["totals"] == reference[1].to_dict()["totals"]
    assert final.processed + final.reused == reference[1].processed


def test_changed_and_removed_photos_are_redone_and_cleaned(tmp_path):
    root = need_faces()
    src = tmp_path / "src"
    (src / "tony").mkdir(parents=True)
    for i in (1, 2):
        shutil.copyfile(lfw(root, "Tony_Blair", i), src / "tony" / f"{i}.jpg")
    dst = tmp_path / "dst"
    assert prepare_faces(src, dst).faces_saved == 2
    (src / "tony" / "2.jpg").unlink()
    Image.new("RGB", (200, 200), "white").save(src / "tony" / "1.jpg")  # no face any more
    report = prepare_faces(src, dst)
    assert report.processed == 1 and report.faces_saved == 0
    assert [s.reason for s in report.skipped] == ["no_face"]
    assert not (dst / "tony").exists()  # stale outputs gone, empty class folder removed


def test_other_settings_or_src_on_the_same_dst_are_refused(src, reference, tmp_path):
    dst = tmp_path / "dst"
    shutil.copytree(reference[0], dst)
    with pytest.raises(PrepareError, match="faces 'largest' -> 'all'"):
        prepare_faces(src, dst, faces="all")
    other = tmp_path / "other"
    (other / "someone").mkdir(parents=True)
    with pytest.raises(PrepareError, match="was prepared from"):
        prepare_faces(other, dst)
    assert outputs(dst) == outputs(reference[0])  # refused before touching anything


def test_a_run_leaves_the_torch_threads_of_new_threads_as_it_found_them(tmp_path):
    """Workers run torch on one thread each; a training thread started later must not."""
    import threading

    import torch

    src = tmp_path / "src"
    (src / "tony").mkdir(parents=True)
    shutil.copyfile(lfw(need_faces(), "Tony_Blair", 1), src / "tony" / "1.jpg")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert prepare_faces(src, tmp_path / "dst", workers=2, device="cpu").faces_saved == 1
        seen: list[int] = []
        thread = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
        thread.start()
        thread.join()
        assert seen == [2]
    finally:
        torch.set_num_threads(before)


# --- --faces all ----------------------------------------------------------------------------


def test_faces_all_saves_each_face_under_its_own_name(tmp_path):
    root = need_faces()
    src = tmp_path / "src"
    (src / "pair").mkdir(parents=True)
    side_by_side(lfw(root, "Colin_Powell", 2), lfw(root, "Tony_Blair", 5)).save(
        src / "pair" / "duo.jpg")
    shutil.copyfile(lfw(root, "Tony_Blair", 1), src / "pair" / "one.jpg")
    report = prepare_faces(src, tmp_path / "dst", faces="all")
    names = sorted(p.name for p in (tmp_path / "dst" / "pair").iterdir())
    assert names == ["duo.jpg_0.png", "duo.jpg_1.png", "one.jpg_0.png"]
    pair = tmp_path / "dst" / "pair"
    assert np.corrcoef(gray(pair / "duo.jpg_0.png"), gray(pair / "duo.jpg_1.png"))[0, 1] < 0.6
    assert report.faces_saved == 3


# --- pure helpers ---------------------------------------------------------------------------


def test_square_box_is_centered_shifted_inside_or_padded():
    assert square_box((40, 40, 60, 60), (100, 100), 0.5) == (30, 30, 70, 70)
    assert square_box((0, 10, 20, 40), (100, 100), 0.0) == (0, 10, 30, 40)  # taller than wide
    assert square_box((0, 0, 20, 20), (100, 100), 0.5) == (0, 0, 40, 40)  # shifted inside
    assert square_box((10, 10, 90, 90), (100, 60), 0.25) == (-10, -30, 110, 90)  # padded


def test_choose_faces_by_confidence_then_area():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 50, 50], [0, 0, 30, 30]], dtype=float)
    probs = np.array([0.99, 0.5, 0.95])
    largest = choose_faces((boxes, probs), Settings())
    assert largest.tolist() == [[0, 0, 30, 30]]  # the 50 px one is not confident
    every = choose_faces((boxes, probs), Settings(faces="all"))
    assert every.tolist() == [[0, 0, 30, 30], [0, 0, 10, 10]]
    with pytest.raises(Skip) as low:
        choose_faces((boxes, np.array([0.5, 0.6, 0.7])), Settings())
    assert low.value.reason == "low_confidence"
    with pytest.raises(Skip) as none:
        choose_faces((np.zeros((0, 4)), np.zeros(0)), Settings())
    assert none.value.reason == "no_face"


def test_output_names_never_collide():
    files = ["a.jpg", "a.png", "a.jpg_0", "a_0.jpg", "a", "a.jpg.png"]
    for faces, count in (("largest", 1), ("all", 3)):
        names = [n for f in files for n in output_names(f, count, faces)]
        assert len(set(names)) == len(names) == len(files) * count


@pytest.mark.parametrize(("dtype", "scale", "offset"), [
    (np.uint16, 257, 0),  # full-range 16-bit: scaled, not clipped at 255
    (np.uint16, 1, 0),  # 8-bit values in a 16-bit image: kept, not scaled down to black
    (np.uint16, 16, 100),  # 12-bit values, offset: stretched over 0..255
    (np.int32, -1000, 5),  # mode I
    (np.float32, 0.5, -3),  # mode F
])
def test_deep_gray_is_stretched_by_its_own_range(dtype, scale, offset):
    ramp = (np.arange(256).reshape(16, 16) * scale + offset).astype(dtype)
    rgb = np.asarray(to_rgb(Image.fromarray(ramp)))
    expected = list(range(256)) if scale > 0 else list(range(255, -1, -1))
    assert rgb[..., 0].ravel().tolist() == expected


def test_sixteen_bit_copy_of_an_8_bit_photo_gives_the_8_bit_face(reference):
    """Issue #10: ``convert("I;16")`` of an 8-bit photo (values 0..255) came out black."""
    tony = reference[0] / "tony"
    eight, sixteen = gray(tony / "gray8.png.png"), gray(tony / "gray16_8bit.png.png")
    assert np.corrcoef(eight, sixteen)[0, 1] > 0.9  # same face; other photos of him < 0.6


def test_huge_rotated_photo_is_detected_on_a_small_upright_copy(src):
    from prunetui.data.prepare import Photo

    path = src / "tony" / "huge.jpg"
    st = path.stat()
    loaded = load_for_detection(Photo("tony", "huge.jpg", path, st.st_size, st.st_mtime_ns), 48)
    with Image.open(path) as stored:
        assert stored.size == (2500, 3000)  # sideways on disk
    assert loaded.size == (3000, 2500) and loaded.image.size == (1024, 853)
    assert loaded.min_face == 20 and loaded.downscaled


# --- the command line -----------------------------------------------------------------------


def test_cli_prints_summary_and_exits_0(tmp_path, capsys):
    root = need_faces()
    src = tmp_path / "src"
    person = src / "tony [bold]"  # brackets must not be read as Rich markup
    person.mkdir(parents=True)
    shutil.copyfile(lfw(root, "Tony_Blair", 1), person / "x.jpg")
    (person / "bad.jpg").write_text("no")
    assert cli_main(["prepare", str(src), str(tmp_path / "dst")]) == 0
    out = capsys.readouterr().out
    assert "tony [bold] " in out and "not_an_image 1" in out  # the table row
    assert "2/2 photos, 1 faces" in out and REPORT_FILE in out
    assert (tmp_path / "dst" / "tony [bold]" / "x.jpg.png").is_file()


@pytest.mark.parametrize("case", ["missing", "file", "no_people", "dst_inside", "no_faces",
                                  "no_workers"])
def test_cli_errors_exit_2_without_traceback(case, tmp_path, capsys):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    expected = {"missing": "does not exist", "file": "is a file", "no_people": "no person folders",
                "dst_inside": "inside SRC", "no_faces": "no face was found",
                "no_workers": "must be at least 1"}[case]
    options = ["--workers", "0"] if case == "no_workers" else []
    if case == "missing":
        src.rmdir()
    elif case == "file":
        src.rmdir()
        src.write_text("x")
    elif case == "no_people":
        (src / "loose.jpg").write_text("x")
    elif case == "dst_inside":
        (src / "tony").mkdir()
        dst = src / "out"
    elif case == "no_workers":
        (src / "tony").mkdir()
    else:
        (src / "tony").mkdir()
        Image.new("RGB", (100, 100), "white").save(src / "tony" / "blank.png")
    assert cli_main(["prepare", str(src), str(dst), *options]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    if case == "dst_inside":
        assert not dst.exists()
