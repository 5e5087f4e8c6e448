"""Config loading, overrides and validation: every bad setting stops with a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest

from prunetui import config, presets
from prunetui.config import Config, ConfigError
from prunetui.pruning import PruneRates

BAD = sorted((Path(__file__).parent / "data" / "bad_configs").glob("*.toml"))
# Run presets only: a sweep preset (prunetui sweep) is not a run config.
PRESETS = [p.path for p in presets.list_presets(presets.RUN)]


def expected_key(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name} must start with '# expect: KEY'"
    return first.removeprefix("# expect: ").strip()


def test_defaults_are_the_paper_setting():
    cfg = config.validate(Config())
    assert (cfg.train.optimizer, cfg.train.lr, cfg.train.batch_size) == ("adam", 1.2e-3, 60)
    assert (cfg.prune.rate, cfg.prune.output_rate, cfg.prune.scope) == (0.2, 0.1, "layer")
    rates = PruneRates.from_config(cfg.prune)
    assert (rates.first_rate, rates.conv_rate) == (None, None)


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.name)
def test_presets_are_valid(path):
    config.load(path)


def test_round_trip_through_toml(tmp_path):
    cfg = config.apply_overrides(Config(), [("prune.schemes", ["rewind", "rewind:100"]),
                                            ("train.epochs", 3)])
    config.save(cfg, tmp_path / "c.toml")
    assert config.load(tmp_path / "c.toml") == cfg


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_bad_config_names_key_value_allowed_and_file(path):
    with pytest.raises(ConfigError) as info:
        config.load(path)
    err = info.value
    assert err.key == expected_key(path)
    message = str(err)
    assert err.key in message and str(path) in message
    assert "\n" not in message  # one paragraph
    assert err.allowed and err.allowed in message


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        config.load(tmp_path / "nope.toml")


@pytest.mark.parametrize("text, key, value", [
    ("train.epochs=2", "train.epochs", 2),
    ("train.lr=1e-3", "train.lr", 1e-3),
    ("data.dataset=fashion-mnist", "data.dataset", "fashion-mnist"),
    ('prune.schemes=["keep","rewind"]', "prune.schemes", ["keep", "rewind"]),
    ("data.root=/tmp/x y", "data.root", "/tmp/x y"),
])
def test_parse_override(text, key, value):
    assert config.parse_override(text) == (key, value)


def test_override_applies_and_validates():
    cfg = config.apply_overrides(Config(), [config.parse_override("prune.rounds=3")])
    assert cfg.prune.rounds == 3
    with pytest.raises(ConfigError) as info:
        config.apply_overrides(Config(), [config.parse_override("prune.rounds=-1")])
    assert info.value.key == "prune.rounds" and "--set" in str(info.value)
    with pytest.raises(ConfigError):
        config.parse_override("epochs")


def test_target_remaining_sets_the_number_of_rounds():
    cfg = config.apply_overrides(Config(), [("prune.target_remaining", 0.1)])
    # 0.8^10 = 0.107 > 0.1 and 0.8^11 = 0.086: eleven rounds reach the target.
    assert cfg.num_rounds == 11
    assert Config().num_rounds == 15


@pytest.mark.parametrize("value", [1.5, 0.995])
def test_conv_rate_out_of_range_is_refused_naming_it(value):
    with pytest.raises(ConfigError) as info:
        config.apply_overrides(Config(), [("prune.conv_rate", value)])
    assert info.value.key == "prune.conv_rate" and "prune.conv_rate" in str(info.value)
    for fine in (-1.0, 0.0, 0.1, 0.99):  # negative: "same as rate"
        assert config.apply_overrides(Config(), [("prune.conv_rate", fine)]).prune.conv_rate \
            == fine
