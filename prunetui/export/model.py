"""Loading an export: ``load_pruned`` gives a ready ``PrunedModel`` (any of the formats).

The network is built from the file's metadata: its ``model.arch`` (built-in constructors,
``torchvision:NAME``, or the user's ``MODULE:CALLABLE`` factory, imported by name with the
recorded ``model.args``), then given the file's layer shapes where shrinking changed them
(``meta["shapes"]`` of a unit-pruned export, else the shrunk weights' shapes), then its
tensors. Nothing in the file is ever executed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from prunetui import config
from prunetui.export.fileformat import ExportError, damaged, decode_sparse, read_file
from prunetui.export.inputs import meta_class_names, prepare_images
from prunetui.nets import build_model, weight_layers
from prunetui.structure.rebuild import rebuild


class PrunedModel(nn.Module):
    """A loaded export: the network, plus the input pixels it reads when shrinking dropped some.

    Input: model-ready tensors shaped like the training data (``N x 1 x 28 x 28`` or
    ``N x 784`` for MNIST, ``N x 1 x crop x crop`` for faces); ``prepare`` makes them from
    images exactly as the run's evaluation did, and ``predict`` names the classes.
    """

    def __init__(self, net: nn.Module, input_index: torch.Tensor | None,
                 meta: dict[str, Any]) -> None:
        super().__init__()
        self.net = net
        self.meta = meta
        self.register_buffer("input_index", input_index)

    @property
    def class_names(self) -> list[str]:
        """Class names in label order (``str(index)`` for files exported without them)."""
        return meta_class_names(self.meta)

    @property
    def face_preparation(self) -> dict[str, Any] | None:
        """How ``prunetui prepare`` cut the training faces (its settings: margin, output size,
        minimum face size and confidence...); None for other datasets and older exports."""
        recorded = self.meta.get("face_preparation")
        return dict(recorded) if isinstance(recorded, dict) and recorded else None

    def prepare(self, images: Any) -> torch.Tensor:
        """Model input from images, by the run's evaluation transform (see export/inputs.py):
        gray, resized to ``data.image_size`` as training decoded images, centre crop to
        ``data.crop`` (faces), normalization. ``images``: a tensor of 0-255 pixels (uint8 or
        float; ``H x W``, ``C x H x W``, ``N x C x H x W`` or ``N x H x W``), a Pillow image, a
        path, or a list of these."""
        return prepare_images(self.meta, images)

    def predict(self, images: Any, top: int = 1,
                batch_size: int = 256) -> list[list[tuple[str, float]]]:
        """Per image, the ``top`` (class name, probability) pairs, most probable first."""
        x = self.prepare(images)
        device = next(self.parameters()).device
        with torch.inference_mode():
            probs = torch.cat([self(x[i:i + batch_size].to(device)).softmax(1).cpu()
                               for i in range(0, len(x), batch_size)])
        values, index = probs.topk(max(1, min(int(top), probs.shape[1])), dim=1)
        names = self.class_names
        return [[(names[i], p) for i, p in zip(row_i, row_p, strict=True)]
                for row_i, row_p in zip(index.tolist(), values.tolist(), strict=True)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_index is not None:
            x = x.flatten(1).index_select(1, self.input_index)
        return self.net(x)


def _resized(module: nn.Module, shape: list[int]) -> nn.Module:
    """A layer of ``module``'s class with weight shape ``shape`` (shrunk layers)."""
    from prunetui.nets.lightcnn import MFMConv2d, MFMLinear

    if isinstance(module, MFMConv2d):
        return MFMConv2d(shape[1], shape[0] // 2, shape[2])
    if isinstance(module, MFMLinear):
        return MFMLinear(shape[1], shape[0] // 2)
    if isinstance(module, nn.Linear):
        return nn.Linear(shape[1], shape[0])
    raise ValueError(f"cannot resize {type(module).__name__}")


def model_from(header: dict[str, Any], tensors: dict[str, torch.Tensor]) -> PrunedModel:
    """The network of a read export (``fileformat.read_file`` / ``read_bytes``), in eval mode."""
    meta = header["meta"]
    cfg = config.from_dict(meta["config"])
    input_shape, num_classes = tuple(meta["input_shape"]), int(meta["num_classes"])
    with torch.random.fork_rng(devices=[]):  # building draws an initialization: not the caller's
        if meta.get("shapes") is not None:  # unit-pruned and shrunk: the recorded layer shapes
            net = rebuild(cfg.model, input_shape, num_classes, meta["shapes"])
            net.load_state_dict(tensors, strict=True)
            return PrunedModel(net, None, meta).eval()
        net = build_model(cfg.model, input_shape, num_classes)
    state = dict(tensors)
    input_index = state.pop("input_index", None)
    for name, desc in header.get("encoded", {}).items():
        parts = {k.split(":", 1)[1]: state.pop(k) for k in list(state)
                 if k.startswith(name + ":")}
        state[name] = decode_sparse(desc, parts)
    with torch.device("meta"):  # shapes only; load_state_dict(assign=True) brings the values
        for name, module in weight_layers(net):
            shape = list(state[f"{name}.weight"].shape)
            if list(module.weight.shape) != shape:
                setattr(net, name, _resized(module, shape))
    net.load_state_dict(state, strict=True, assign=True)
    model = PrunedModel(net, None if input_index is None else input_index.long(), meta)
    return model.eval()


def load_pruned(path: str | Path) -> PrunedModel:
    """Load a ``prunetui export`` file: a ready ``nn.Module`` in eval mode, metadata on ``.meta``.

    Nothing in the file is executed (``torch.load(weights_only=True)`` reads only tensors and
    plain data); a truncated, modified or foreign file raises :class:`ExportError` with a
    one-line reason. The network is rebuilt from the file alone for the built-in and
    torchvision networks, shrunk ones included (their layer shapes are recorded). A network of
    your own (``model.arch = "MODULE:CALLABLE"``) is named in the file, not stored in it:
    loading imports ``MODULE`` (from ``PYTHONPATH`` or the current folder, as training did) and
    calls ``CALLABLE(num_classes=..., input_shape=..., **model.args)`` with the recorded
    values, so load such files only where that module is the one you trust.
    """
    header, tensors = read_file(path)
    try:
        return model_from(header, tensors)
    except config.ConfigError as err:
        if err.key != "model.arch":
            raise damaged(Path(path), f"its settings are not valid ({err})") from err
        raise ExportError(f"{path} cannot be loaded: its network {err.value} cannot be built "
                          f"here ({err.allowed}); a network of your own must be importable "
                          "(on PYTHONPATH or in the current folder), as when it was "
                          "trained") from err
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise damaged(Path(path), f"its network does not match its header ({err})") from err


__all__ = ["PrunedModel", "load_pruned", "model_from"]
