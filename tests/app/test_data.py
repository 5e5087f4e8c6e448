"""Data: the dataset root listing, and face preparation of a few real photos in a worker."""

from __future__ import annotations

import json
import time

from textual.widgets import DataTable, Input

from prunetui.app.app import PruneApp
from prunetui.app.screens.data import DataScreen
from tests.app.conftest import SIZE, wait_for


def cells(table: DataTable) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def test_lists_datasets_and_prepares_a_tiny_face_folder(tmp_path, faces_src, monkeypatch):
    from prunetui.data import prepare

    # With a warm detector all batches finished before the stop key was handled; a short
    # delay per batch makes the stop land part-way, as it does for a user on a real folder.
    detect = prepare.FaceDetector.detect

    def slow_detect(self, images, min_face):
        time.sleep(0.2)
        return detect(self, images, min_face)

    monkeypatch.setattr(prepare.FaceDetector, "detect", slow_detect)
    root = tmp_path / "data"
    root.mkdir()
    app = PruneApp(models_dir=tmp_path / "models", data_root=root, start="data")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, DataScreen)
        table = screen.query_one("#datasets", DataTable)
        await wait_for(pilot, lambda: table.row_count == 2, 10, "the dataset list")
        rows = cells(table)
        assert rows[0][0] == "mnist" and "missing" in rows[0][1]
        details = str(screen.query_one("#dataset-details").render())
        assert "train-images-idx3-ubyte.gz" in details  # how to get it, in full

        await pilot.press("f")
        screen.query_one("#prep-src", Input).value = str(faces_src)
        screen.query_one("#prep-dst", Input).value = str(root / "faces")
        await pilot.press("ctrl+g", "ctrl+x")  # start, and stop at once: nothing is lost
        await wait_for(pilot, lambda: screen.report is not None, 30, "the stopped preparation")
        assert screen.report["run"]["cancelled"] and screen.report["totals"]["pending"] > 0, (
            screen.report["run"], screen.report["totals"])
        assert "start again" in str(screen.query_one("#prep-status").render())
        first = screen.report["run"]["processed"]
        await pilot.press("ctrl+g")  # clears the report at once, then continues the work
        await wait_for(pilot, lambda: screen.report is not None, 80, "the preparation")
        assert not screen.preparing, screen.query_one("#prep-status").render()
        assert screen.report["run"]["reused"] == first  # the stopped run's photos are kept
        assert screen.report["totals"]["pending"] == 0
        assert screen.report["totals"]["faces_saved"] >= 3
        skipped = cells(screen.query_one("#prep-skipped", DataTable))
        assert any(r[0].endswith("notes.txt") for r in skipped)
        report = json.loads((root / "faces" / "prepare_report.json").read_text())
        assert report["totals"]["skipped"] == len(skipped)
        # The new folder shows up in the listing with its people. (The stopped first run may
        # already have listed it with one person: wait for the rescan after the second.)
        await wait_for(pilot, lambda: table.row_count == 3 and "2 people" in cells(table)[2][2],
                       10, "the prepared folder with both people")
        assert cells(table)[2][0] == "faces"
