"""Setup's Model field by keys: completions for network names, the import check as you
type, and the Model arguments field of a factory."""

from __future__ import annotations

import pytest
from textual.widgets import Input

from prunetui.app.app import PruneApp
from prunetui.app.widgets.form import FieldRow
from tests.app.conftest import SIZE, focus_by_tab, type_text, wait_for


@pytest.fixture(autouse=True)
def calibration_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


async def test_model_field_completes_names_and_checks_imports(models, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = PruneApp(models_dir=models, data_root=tmp_path, start="setup")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.5)
        await focus_by_tab(pilot, "f-model-arch")
        arch = app.screen.query_one("#f-model-arch", Input)
        await pilot.press("ctrl+u")
        await type_text(pilot, "torchvision:res")
        await pilot.press("right")  # accepts the offered completion
        assert arch.value == "torchvision:resnet18"
        args_row = app.screen.query_one("#row-f-model-args", FieldRow)
        await wait_for(pilot, lambda: args_row.display, 5, "the arguments field")
        await pilot.press("ctrl+u")
        await type_text(pilot, "nosuchmodule:build")
        row = app.screen.query_one("#row-f-model-arch", FieldRow)
        await wait_for(pilot, lambda: "nosuchmodule" in str(row.query_one(".field-error")
                                                              .render()), 10, "the import error")
        assert app.screen.query_one("#launch").disabled
        await pilot.press("ctrl+u")
        await type_text(pilot, "conv-4")
        await wait_for(pilot, lambda: not args_row.display, 5, "the arguments field hidden")
