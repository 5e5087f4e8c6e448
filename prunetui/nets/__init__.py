"""Model construction, initialisation and the list of prunable layers.

``model.arch`` names a built-in network, ``torchvision:NAME`` or ``MODULE:CALLABLE``
(:mod:`prunetui.nets.factory`). A prunable layer is any ``nn.Linear`` or ``nn.Conv2d`` weight,
in registration order: the first is the input layer, the classifier (the last, or the one
``model.output`` names) the output layer, the rest hidden; each knows whether it is a
convolution (``prune.conv_rate``). ``prune.skip`` patterns leave layers dense. BatchNorm,
biases and embeddings are never pruned.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import partial

import torch
from torch import nn

from prunetui.config import Config, ConfigError, ModelConfig
from prunetui.nets.factory import arch_error, construct


@dataclass(frozen=True)
class PrunableLayer:
    name: str  # parameter name in state_dict, e.g. "fc1.weight"
    role: str  # "first" | "hidden" | "output"
    conv: bool = False  # an nn.Conv2d weight (prune.conv_rate), not an nn.Linear one


def build_model(cfg: ModelConfig, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """The network of ``cfg``; a problem with ``model.arch`` raises :class:`ConfigError`.

    The model keeps ``prunetui_rebuild``, a function building it anew, which
    :func:`init_weights` uses to redraw the network's own initialisation from a seed."""
    model = construct(cfg, input_shape, num_classes)
    model.prunetui_rebuild = partial(construct, cfg, tuple(input_shape), num_classes)
    return model


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, m) for name, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


def skipped(name: str, skip: tuple[str, ...]) -> bool:
    """Whether the layer ``name`` (module name; ``name.weight`` matches too) is left dense."""
    return any(fnmatchcase(name, p) or fnmatchcase(f"{name}.weight", p) for p in skip)


def output_layer(names: list[str], output: str = "") -> str:
    """The classifier's module name: ``output`` (with or without ``.weight``), else the last."""
    if not output:
        return names[-1]
    name = output.removesuffix(".weight")
    if name not in names:
        raise ValueError(f"no nn.Linear or nn.Conv2d layer is named {name!r}; the layers are "
                         + ", ".join(names))
    return name


def prunable_layers(model: nn.Module, skip: tuple[str, ...] = (), output: str = ""
                    ) -> list[PrunableLayer]:
    found = weight_layers(model)
    names = [name for name, _ in found]
    if not names:
        return []
    out_name = output_layer(names, output)
    out = []
    for i, (name, module) in enumerate(found):
        if skipped(name, skip):
            continue
        explicit_output = bool(output) and name == out_name
        role = ("first" if i == 0 and not explicit_output
                else "output" if name == out_name else "hidden")
        out.append(PrunableLayer(name=f"{name}.weight", role=role,
                                 conv=isinstance(module, nn.Conv2d)))
    return out


def layers_for(cfg: Config, model: nn.Module) -> list[PrunableLayer]:
    """The prunable layers of ``model`` under ``prune.skip`` and ``model.output``."""
    return prunable_layers(model, cfg.prune.skip, cfg.model.output)


def init_weights(model: nn.Module, scheme: str, generator: torch.Generator) -> None:
    """Draw new weights from ``generator``'s seed.

    ``default``: the network's own initialisation (its class's ``default_init`` scheme where
    it names one: Glorot normal for LeNet-300-100 and LightCNN-9), redrawn under the seed, with
    BatchNorm reset. ``glorot-normal`` / ``kaiming-normal``: Glorot or Kaiming normal weights
    and zero biases on every Linear and Conv2d; other parameters and buffers (BatchNorm,
    embeddings), when there are any, get the network's own initialisation under the seed."""
    if scheme == "default":
        own = getattr(model, "default_init", None)
        if own is None:
            redraw_default(model, generator.initial_seed())
            return
        scheme = own
    if scheme not in ("glorot-normal", "kaiming-normal"):
        raise ValueError(f"unknown init {scheme!r}")
    layers = weight_layers(model)
    covered = {id(t) for _, m in layers for t in (m.weight, m.bias) if t is not None}
    if any(id(t) not in covered for t in [*model.parameters(), *model.buffers()]):
        redraw_default(model, generator.initial_seed())
    nonlinearity = getattr(model, "kaiming_nonlinearity", "relu")
    with torch.no_grad():
        for _, module in layers:
            if scheme == "glorot-normal":
                nn.init.xavier_normal_(module.weight, generator=generator)
            else:
                nn.init.kaiming_normal_(module.weight, nonlinearity=nonlinearity,
                                        generator=generator)
            if module.bias is not None:
                module.bias.zero_()


def redraw_default(model: nn.Module, seed: int) -> None:
    """The network's own initialisation drawn with CPU seed ``seed``, leaving the global RNG
    as it was: a newly built copy's state (``prunetui_rebuild``), else ``reset_parameters()``
    of every submodule (which resets BatchNorm's statistics too)."""
    rebuild = getattr(model, "prunetui_rebuild", None)
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        if rebuild is not None:
            model.load_state_dict(rebuild().state_dict())
            return
        for module in model.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()


def check_model(cfg: Config, input_shape: tuple[int, ...], num_classes: int) -> None:
    """Build the network once and run a batch of two zero inputs through it, before any work.

    Raises :class:`ConfigError` naming ``model.arch`` (cannot be built, fails on the input,
    or does not give ``num_classes`` outputs), ``model.output`` or ``prune.skip``. The global
    random state is left as it was."""
    arch = cfg.model.arch
    with torch.random.fork_rng(devices=[]):
        model = build_model(cfg.model, input_shape, num_classes)
        try:
            with torch.no_grad():
                out = model.eval()(torch.zeros(2, *input_shape))
        except Exception as err:  # any failure of the network is reported
            raise arch_error(arch, f"it fails on inputs of shape {tuple(input_shape)} "
                             f"({type(err).__name__}: {err})") from None
    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    if shape != (2, num_classes):
        raise arch_error(arch, f"for a batch of 2 it returns {shape}, not (2, {num_classes}): "
                         f"it must give one logit for each of the data's {num_classes} classes")
    names = [name for name, _ in weight_layers(model)]
    if not names:
        raise arch_error(arch, "it has no nn.Linear or nn.Conv2d layer to prune")
    try:
        output_layer(names, cfg.model.output)
    except ValueError as err:
        raise ConfigError("model.output", cfg.model.output, str(err)) from None
    for pattern in cfg.prune.skip:
        if not any(skipped(name, (pattern,)) for name in names):
            raise ConfigError("prune.skip", list(cfg.prune.skip),
                              f"{pattern!r} matches no layer; the layers are " + ", ".join(names))
    if not layers_for(cfg, model):
        raise ConfigError("prune.skip", list(cfg.prune.skip), "leaves no layer to prune")
