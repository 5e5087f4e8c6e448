"""Runs: 't' tries a run's model on a folder of images and shows the predictions table."""

from __future__ import annotations

from PIL import Image

from prunetui import export
from prunetui.app.app import PruneApp
from prunetui.app.screens.predict import PredictScreen
from prunetui.app.screens.runs import RunsScreen
from tests.app.conftest import SIZE, click_button, finished_run, listed, unforeseen, wait_for

IMAGES = 20


def digit_folder(root, out):
    """The first IMAGES MNIST test images as out/<digit>/<i>.png."""
    import torchvision

    test = torchvision.datasets.MNIST(str(root), train=False)
    for i in range(IMAGES):
        folder = out / str(int(test.targets[i]))
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(test.data[i].numpy()).save(folder / f"{i}.png")
    (out / "notes.txt").write_text("not an image")
    return out


async def try_on(pilot, folder) -> PredictScreen:
    """'t' on Runs, the folder typed in, Predict clicked: the dialog, predicting."""
    await pilot.press("t")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, PredictScreen), 5, "the dialog")
    dialog = pilot.app.screen
    dialog.query_one("#predict-folder").value = str(folder)
    await click_button(pilot, "#predict-go")
    return dialog


async def test_try_it_shows_predictions_and_accuracy(models, mnist_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = finished_run(models, mnist_root)
    folder = digit_folder(mnist_root, tmp_path / "digits")
    app = PruneApp(models_dir=models, data_root=mnist_root, start="runs")
    async with app.run_test(size=SIZE) as pilot:
        await listed(pilot, run)
        dialog = await try_on(pilot, folder)  # model left blank: exported
        await wait_for(pilot, lambda: dialog.result is not None or dialog.error, 60,
                       "the predictions")
        assert not dialog.error
        result = dialog.result
        assert len(result.images) == IMAGES and result.ignored == 1
        table = dialog.query_one("#predict-table")
        assert table.row_count == IMAGES
        names = {str(table.get_row_at(i)[2]) for i in range(IMAGES)}
        assert names <= {str(d) for d in range(10)}
        status = str(dialog.query_one("#predict-status").render())
        accuracy = result.accuracy()
        assert f"Accuracy {100 * accuracy.value:.2f}% ({accuracy.correct} of {IMAGES}" in status

        # The same with a model file: the suggested round, exported by hand.
        path = tmp_path / "m.pt"
        export.export(export.load_source(run, export.choose(run)), "sparse", path)
        dialog.query_one("#predict-model").value = str(path)
        dialog.result = None
        await click_button(pilot, "#predict-go")
        await wait_for(pilot, lambda: dialog.result is not None or dialog.error, 60,
                       "the predictions from the file")
        assert [r.predicted for r in dialog.result.images] == \
            [r.predicted for r in result.images]

        dialog.query_one("#predict-model").value = str(tmp_path / "digits" / "notes.txt")
        await click_button(pilot, "#predict-go")
        await wait_for(pilot, lambda: bool(dialog.error), 30, "the refusal")
        assert "not a prunetui export" in dialog.error

        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), 5, "Runs")


async def test_an_unforeseen_error_is_shown_and_the_button_comes_back(models, mnist_root,
                                                                        tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = finished_run(models, mnist_root)
    folder = digit_folder(mnist_root, tmp_path / "digits")
    monkeypatch.setattr("prunetui.predict.predict_images", unforeseen)
    app = PruneApp(models_dir=models, data_root=mnist_root, start="runs")
    async with app.run_test(size=SIZE) as pilot:
        await listed(pilot, run)
        dialog = await try_on(pilot, folder)
        await wait_for(pilot, lambda: bool(dialog.error), 60, "the error")
        assert dialog.error == "RuntimeError: the kernel said no"
        assert "Cannot predict: RuntimeError" in str(dialog.query_one("#predict-status").render())
        assert not dialog.query_one("#predict-go").disabled
