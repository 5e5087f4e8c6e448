"""``model.arch`` to a network: built-in names, ``torchvision:NAME`` and ``MODULE:CALLABLE``.

Every problem with the name itself (an import that fails, an attribute that is missing, an
object that is not callable or does not return an ``nn.Module``) is a :class:`ConfigError`
naming ``model.arch``, so the CLI exits with code 2 and the app shows it on the field.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from functools import partial
from typing import Any

import torch
from torch import nn

from prunetui.config import ConfigError, ModelConfig
from prunetui.nets.shapes import as_images, image_shape

TORCHVISION = "torchvision:"


def arch_error(arch: str, message: str) -> ConfigError:
    return ConfigError("model.arch", arch, message)


def construct(cfg: ModelConfig, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """A newly built network; its weights are the network's own initialisation."""
    shape = tuple(int(s) for s in input_shape)
    if cfg.arch.startswith(TORCHVISION):
        return torchvision_model(cfg.arch, shape, num_classes, dict(cfg.args))
    if ":" in cfg.arch:
        return user_model(cfg.arch, shape, num_classes, dict(cfg.args))
    try:
        return builtin_model(cfg, shape, num_classes)
    except ValueError as err:  # e.g. inputs too small for the pools, or not images
        raise arch_error(cfg.arch, str(err)) from None


def builtin_model(cfg: ModelConfig, shape: tuple[int, ...], num_classes: int) -> nn.Module:
    if cfg.arch == "lenet-300-100":
        from prunetui.nets.lenet import LeNet300100

        return LeNet300100(in_features=int(torch.tensor(shape).prod()), num_classes=num_classes)
    if cfg.arch == "lightcnn-9":
        from prunetui.nets.lightcnn import LightCNN9

        return LightCNN9(input_shape=shape, num_classes=num_classes, width=cfg.width)
    if cfg.arch.startswith("conv-"):
        from prunetui.nets.conv import PAIRS, conv_net

        if cfg.arch in PAIRS:
            return conv_net(cfg.arch, shape, num_classes)
    if cfg.arch == "vgg-19":
        from prunetui.nets.vgg import VGG

        return VGG(shape, num_classes)
    if cfg.arch == "resnet-20":
        from prunetui.nets.resnet import ResNet

        return ResNet(shape, num_classes, depth=20)
    raise arch_error(cfg.arch, "no such built-in network")


def check_name(arch: str) -> None:
    """Whether ``model.arch`` resolves, without building: the torchvision model exists, the
    user's module imports and names a callable (the Setup form checks this as you type)."""
    if arch.startswith(TORCHVISION):
        torchvision_name(arch)
    elif ":" in arch:
        resolve_factory(arch)


# ---------------------------------------------------------------------------------------------
# torchvision


def torchvision_name(arch: str) -> str:
    """The NAME of ``torchvision:NAME``, when torchvision has such a classification model."""
    import torchvision

    name = arch[len(TORCHVISION):]
    known = torchvision.models.list_models(module=torchvision.models)
    if name not in known:
        raise arch_error(arch, f"torchvision has no classification model {name!r} (it has "
                         + ", ".join(known[:8]) + ", ...; torchvision.models.list_models())")
    return name


def to_rgb(module: nn.Module, args: tuple[Any, ...], shape: tuple[int, int, int]
           ) -> tuple[Any, ...]:
    """Forward pre-hook: flat inputs as images, one gray channel repeated into three."""
    x = as_images(args[0], shape)
    return (x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x, *args[1:])


def torchvision_model(arch: str, shape: tuple[int, ...], num_classes: int,
                      args: dict[str, Any]) -> nn.Module:
    """``torchvision.models.get_model(NAME, weights=None, num_classes=...)``; gray (1-channel)
    inputs are repeated into the three channels every torchvision model expects."""
    import torchvision

    name = torchvision_name(arch)
    try:
        images = image_shape(shape)
    except ValueError as err:
        raise arch_error(arch, str(err)) from None
    if images[0] not in (1, 3):
        raise arch_error(arch, f"torchvision models take 3 channels (or 1, repeated); "
                         f"the data has {images[0]}")
    try:
        model = torchvision.models.get_model(name, weights=None, num_classes=num_classes, **args)
    except (TypeError, ValueError) as err:
        raise arch_error(arch, f"torchvision could not build it with model.args = {args!r} "
                         f"({err})") from None
    if images[0] == 1 or len(shape) != 3:
        model.register_forward_pre_hook(partial(to_rgb, shape=images))
    return model


# ---------------------------------------------------------------------------------------------
# A user's factory


def resolve_factory(arch: str) -> Callable[..., Any]:
    """The callable named by ``MODULE:CALLABLE``, imported from ``PYTHONPATH`` or the current
    folder (importing runs the module, as running the network would)."""
    module_name, _, attr = arch.partition(":")
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except Exception as err:  # any error in the user's module is reported
        raise arch_error(arch, f"importing {module_name} failed "
                         f"({type(err).__name__}: {err})") from None
    finally:
        if added:
            sys.path.remove(cwd)
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise arch_error(arch, f"{module_name} has no attribute {attr!r}")
        target = getattr(target, part)
    if not callable(target):
        raise arch_error(arch, f"{attr} is a {type(target).__name__}, not callable: it must be "
                         "a function or class returning an nn.Module")
    return target


def user_model(arch: str, shape: tuple[int, ...], num_classes: int,
               args: dict[str, Any]) -> nn.Module:
    """``CALLABLE(num_classes=..., input_shape=..., **model.args)``, which must give a Module."""
    factory = resolve_factory(arch)
    try:
        model = factory(num_classes=num_classes, input_shape=shape, **args)
    except Exception as err:  # the factory is the user's code
        raise arch_error(arch, f"calling it with num_classes={num_classes}, input_shape={shape}"
                         f" and model.args = {args!r} failed ({type(err).__name__}: {err})"
                         ) from None
    if not isinstance(model, nn.Module):
        raise arch_error(arch, f"it returned a {type(model).__name__}, not an nn.Module")
    return model
