"""Presets by name: the shipped list, name-or-path resolution, the CLI and the app's Load list."""

from __future__ import annotations

import pytest

from prunetui import config, presets, store
from prunetui.app.screens.configfiles import config_choices
from prunetui.cli import main
from tests.conftest import REPO, tiny_overrides


def test_every_shipped_run_preset_is_valid_and_says_what_it_is_and_how_long_it_takes():
    shipped = presets.list_presets()
    names = [p.name for p in shipped]
    assert "quick" in names and "lth-lenet-mnist" in names
    # The checkout's presets/ is the same folder as the package's (a symlink), so docs and
    # tests that use presets/<name>.toml read exactly what a wheel ships.
    assert sorted(p.stem for p in (REPO / "presets").glob("*.toml")) == sorted(names)
    for p in presets.list_presets(presets.RUN):
        config.load(p.path)  # valid run config
        assert p.description and not p.description.startswith(("description", "#"))
        assert p.cpu != "?" and p.gpu != "?", p.name
        assert len(p.description) <= 76, p.name  # one line at 80 columns in `prunetui presets`


def test_kind_tells_run_configs_from_sweep_files(tmp_path):
    sweep = tmp_path / "s.toml"
    sweep.write_text('# description: two seeds\nbase = "quick"\n[grid]\n"train.seed" = [0, 1]\n')
    run = tmp_path / "r.toml"
    run.write_text("# A tiny run\n# cpu: 1 s\n[train]\niterations = 10\n")
    assert presets.read_preset(sweep).kind == presets.SWEEP
    assert presets.read_preset(sweep).description == "two seeds"
    r = presets.read_preset(run)
    assert (r.kind, r.description, r.cpu, r.gpu) == (presets.RUN, "A tiny run", "1 s", "?")


def test_resolve_names_paths_and_docs_paths_outside_a_checkout(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no presets/ folder here, as after pip install
    quick = presets.PRESETS_DIR / "quick.toml"
    assert presets.resolve("quick") == quick
    assert presets.resolve("quick.toml") == quick
    assert presets.resolve("presets/quick.toml") == quick  # the README's commands still work
    mine = tmp_path / "quick.toml"
    mine.write_text("[train]\niterations = 7\n")
    assert presets.resolve("quick.toml") == mine.relative_to(tmp_path)  # a real file wins
    assert presets.resolve(str(mine)) == mine


@pytest.mark.parametrize("name", ["quikc", "some/dir/quick.toml", "."])
def test_unknown_name_is_a_config_error_listing_the_presets(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(config.ConfigError) as info:
        presets.resolve(name)
    message = str(info.value)
    assert all(n in message for n in [p.name for p in presets.list_presets()])
    assert "prunetui presets" in message


def test_cli_presets_lists_name_description_and_times(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    for p in presets.list_presets():
        line = next(line for line in out.splitlines() if line.startswith(p.name + " "))
        assert p.cpu in line and p.gpu in line
        assert p.description in out


def test_cli_run_unknown_name_exits_2_with_the_list_and_no_run(tmp_path, capsys):
    assert main(["run", "quikc", "--out", str(tmp_path / "m")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "'quikc' is neither a config file nor a preset" in err
    assert "quick" in err and "Traceback" not in err
    assert not (tmp_path / "m").exists()


def test_cli_run_by_name_from_outside_the_checkout(mnist_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["run", "quick", "--name", "by-name", "--plain"]
    for key, value in tiny_overrides(mnist_root, **{"prune.rounds": 1}):
        args += ["--set", f"{key}={value}"]  # a list prints as TOML literal strings
    assert main(args) == 0
    run = store.RunDir(tmp_path / "models" / "by-name")
    assert run.read_status().state == store.FINISHED
    cfg = run.config()
    quick = config.load(presets.PRESETS_DIR / "quick.toml")
    assert cfg.train.lr == quick.train.lr and cfg.prune.rate == quick.prune.rate
    assert cfg.train.iterations == 30  # --set applied over the preset


def test_app_load_list_offers_every_run_preset_outside_a_checkout(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    choices = config_choices(tmp_path / "models")
    offered = {path for label, path in choices if label.startswith("preset")}
    assert offered == {p.path for p in presets.list_presets(presets.RUN)}
    assert all(p.kind == presets.RUN for p in map(presets.read_preset, offered))


def test_run_refuses_a_sweep_file_naming_the_command_that_takes_it(tmp_path, capsys):
    sweep = tmp_path / "s.toml"
    sweep.write_text('base = "quick"\n[grid]\n"train.seed" = [0, 1]\n')
    assert main(["run", str(sweep), "--out", str(tmp_path / "m")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"prunetui sweep {sweep}" in err and "Traceback" not in err
    assert presets.resolve(sweep) == sweep  # without a kind, any file resolves
