"""Experiment configuration: frozen dataclasses, TOML load/save, ``--set`` overrides, validation.

One concept a module: :mod:`.sections` (the dataclasses and their defaults), :mod:`.schemes`
(the scheme vocabulary), :mod:`.validation` (every value checked once, before any work starts),
:mod:`.files` (TOML and ``--set``), :mod:`.errors` (:class:`ConfigError`, whose message names the
key, the value, what is allowed and the file it came from).
"""

from prunetui.config.errors import ConfigError
from prunetui.config.files import (
    apply_overrides,
    dumps,
    from_dict,
    load,
    parse_override,
    save,
    to_dict,
)
from prunetui.config.schemes import (
    AT_INIT_SCHEMES,
    NAMED_SCHEMES,
    SCHEME_HELP,
    SCHEMES_WITH_K,
    SchemeSpec,
    is_scheme,
    lr_rewind_iteration,
    parse_scheme,
    rewind_iteration,
)
from prunetui.config.sections import (
    ARCHS,
    DATASETS,
    DEVICES,
    INITS,
    MASK_SOURCES,
    OPTIMIZERS,
    PRECISIONS,
    SCHEDULES,
    SCOPES,
    SECTIONS,
    STRUCTURES,
    UNIT_CRITERIA,
    Config,
    DataConfig,
    LogConfig,
    ModelConfig,
    PruneConfig,
    TrainConfig,
)
from prunetui.config.validation import check_arch, validate

__all__ = [
    "ARCHS",
    "AT_INIT_SCHEMES",
    "DATASETS",
    "DEVICES",
    "INITS",
    "MASK_SOURCES",
    "NAMED_SCHEMES",
    "OPTIMIZERS",
    "PRECISIONS",
    "SCHEDULES",
    "SCHEMES_WITH_K",
    "SCHEME_HELP",
    "SCOPES",
    "SECTIONS",
    "STRUCTURES",
    "UNIT_CRITERIA",
    "Config",
    "ConfigError",
    "DataConfig",
    "LogConfig",
    "ModelConfig",
    "PruneConfig",
    "SchemeSpec",
    "TrainConfig",
    "apply_overrides",
    "check_arch",
    "dumps",
    "from_dict",
    "is_scheme",
    "load",
    "lr_rewind_iteration",
    "parse_override",
    "parse_scheme",
    "rewind_iteration",
    "save",
    "to_dict",
    "validate",
]
