"""Writing an export: the chosen segment in one of the ``FORMATS``, with its metadata.

- ``sparse``: each prunable weight keeps only its surviving values (CSR or bitmask, see
  fileformat.py); biases and other tensors stay dense.
- ``dense``: the masked network as a plain state dict.
- ``shrunk``: units and channels that cannot matter removed (shrink.py): smaller dense layers
  computing the same function. For a unit-pruned run (``prune.structure = "unit"``) this is
  the network without its removed units and channels (prunetui.structure.shrink, checked
  against the masked one on a random batch), whose layer shapes the file records
  (``meta["shapes"]``) so that ``load_pruned`` rebuilds it from the file alone.

A network of the user's own (``model.arch = "MODULE:CALLABLE"``) is recorded by name with its
``model.args`` (``meta["factory"]``): the file holds no code, loading imports the factory.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from prunetui import config, store
from prunetui.export.fileformat import FORMATS, ExportError, encode_sparse, index_dtype, to_bytes
from prunetui.export.source import Source
from prunetui.nets import weight_layers
from prunetui.shrink import ChainLayer, ShrinkError, shrink
from prunetui.structure.masks import unit_masks_from
from prunetui.structure.rebuild import shapes
from prunetui.version import __version__


def chain_of(model: nn.Module) -> list[ChainLayer]:
    from prunetui.nets.lightcnn import MFMConv2d, MFMLinear

    return [ChainLayer(name, isinstance(m, (MFMConv2d, MFMLinear)))
            for name, m in weight_layers(model)]


def _usable(src: Source, probe: store.FactsProbe) -> store.DataFacts | None:
    facts = probe.facts
    return facts if facts is not None and facts.dataset == src.cfg.data.dataset else None


def input_normalization(src: Source, probe: store.FactsProbe | None = None
                        ) -> dict[str, float] | None:
    """Mean and std of pixel/255 that model inputs are normalized with (None when unknown).
    Folders and faces: as the run recorded them in ``datafacts.json`` (``probe``: that file,
    when the caller has read it); runs from before that file decode the training set again."""
    data = src.cfg.data
    if data.dataset in ("folder", "faces"):
        facts = _usable(src, store.read_facts(src.run.path) if probe is None else probe)
        if facts is not None and facts.mean is not None and facts.std is not None \
                and len(facts.mean) == src.input_shape()[0]:
            if data.dataset == "faces":  # one channel, recorded as plain numbers
                return {"mean": facts.mean[0], "std": facts.std[0]}
            return {"mean": list(facts.mean), "std": list(facts.std)}
    if data.dataset in ("mnist", "fashion-mnist"):
        from prunetui.data.mnist import NORMALIZATION

        mean, std = NORMALIZATION[data.dataset]
        return {"mean": mean, "std": std}
    if data.dataset in ("cifar10", "cifar100"):
        from prunetui.data.cifar import NORMALIZATION as CIFAR

        mean, std = CIFAR[data.dataset]
        return {"mean": list(mean), "std": list(std)}
    if data.dataset == "folder":
        return _folder_stats(data)
    return _face_stats(data)


@functools.lru_cache(maxsize=8)
def _folder_stats(data: config.DataConfig) -> dict[str, list[float]] | None:
    """A folder run is normalized per channel with its training set's statistics: decode it
    once to get them (the run's own split and subset pick that training set)."""
    from prunetui.data import DataError
    from prunetui.data.folder import load_folder

    try:
        images = load_folder(config.Config(data=data))
    except (DataError, OSError):
        return None
    return {"mean": list(images.mean), "std": list(images.std)}


@functools.lru_cache(maxsize=8)
def _face_stats(data: config.DataConfig) -> dict[str, float] | None:
    """Faces are normalized with their training set's statistics: decode it once to get them.
    The run's own data settings (its split included) pick that training set."""
    from prunetui.data import DataError
    from prunetui.data.faces import load_faces

    try:
        faces = load_faces(data)
    except (DataError, OSError):
        return None
    return {"mean": faces.mean, "std": faces.std}


def class_names(src: Source, probe: store.FactsProbe | None = None) -> list[str] | None:
    """The run's class names in label order (None when they cannot be known): as recorded in
    ``datafacts.json``, else from ``data.root`` (runs from before that file)."""
    data = src.cfg.data
    facts = _usable(src, store.read_facts(src.run.path) if probe is None else probe)
    names: tuple[str, ...] | None = facts.class_names if facts is not None else None
    if names and len(names) == src.num_classes():
        return list(names)
    if data.dataset in ("mnist", "fashion-mnist"):
        from prunetui.data.mnist import class_names as dataset_names

        names = dataset_names(data.dataset)
    elif data.dataset in ("cifar10", "cifar100"):
        from prunetui.data.cifar import class_names as cifar_names

        names = cifar_names(data.root, data.dataset)
    elif data.dataset == "folder":
        names = _folder_names(data)
    else:
        names = _face_names(data.root)
    return list(names) if names and len(names) == src.num_classes() else None


def _folder_names(data: config.DataConfig) -> tuple[str, ...] | None:
    """The class folders, in ImageFolder's label order."""
    from prunetui.data import DataError
    from prunetui.data.folder import list_folder

    try:
        return tuple(list_folder(Path(data.root), tuple(data.split)).classes)
    except (DataError, OSError):
        return None


def _face_names(root: str) -> tuple[str, ...] | None:
    """The people of the run's face split (its split.json), in label order."""
    from prunetui.data import DataError
    from prunetui.data.facesplit import SPLIT_FILE, label_order, read_split

    try:
        split, _, _ = read_split(Path(root) / SPLIT_FILE)
    except (DataError, OSError):
        return None
    return label_order(split)


def face_preparation(src: Source) -> dict[str, Any] | None:
    """The settings ``prunetui prepare`` made the run's faces with (margin, output size,
    minimum face size and confidence), from the report it left in ``data.root``; None for
    other datasets or when the report is missing or has none."""
    if src.cfg.data.dataset != "faces":
        return None
    import json

    from prunetui.data.prepare.report import REPORT_FILE

    try:
        doc = json.loads((Path(src.cfg.data.root) / REPORT_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    settings = doc.get("settings") if isinstance(doc, dict) else None
    return dict(settings) if isinstance(settings, dict) and settings else None


def facts_note(src: Source, probe: store.FactsProbe) -> str:
    """A line for the export's message when ``datafacts.json`` is damaged ("" otherwise)."""
    if probe.ok or probe.state == store.MISSING:
        return ""
    return (f"warning: {src.run.relative(probe.path)} is damaged ({probe.problem}): the input "
            "normalization and class names come from data.root as it is now; 'prunetui check "
            f"{src.run.path}' says more, and a resume rewrites the file.\n")


@dataclass
class Exported:
    data: bytes
    header: dict[str, Any]
    message: str  # e.g. what shrinking removed


def build_export(src: Source, fmt: str, normalization: dict[str, float] | None = None, *,
                 model: nn.Module | None = None) -> Exported:
    """The file contents of ``src`` in format ``fmt``. ``model``: ``src.build()``, when the
    caller has built it already (it is only read)."""
    if fmt not in FORMATS:
        raise ExportError(f"Unknown format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    if model is None:
        model = src.build()
    probe = store.read_facts(src.run.path)
    meta = {
        "run": src.run.name, "run_path": str(src.run.path), "round": src.round,
        "scheme": src.scheme, "replicate": src.replicate, "remaining": src.remaining,
        "test_acc": src.test_acc, "early_stop_test_acc": src.early_stop_test_acc,
        "config": config.to_dict(src.cfg), "prunetui_version": __version__,
        "torch_version": torch.__version__, "format": fmt, "arch": src.cfg.model.arch,
        "input_shape": list(src.input_shape()), "num_classes": src.num_classes(),
        "input_normalization": normalization or input_normalization(src, probe),
        "class_names": class_names(src, probe), "face_preparation": face_preparation(src),
        "structure": src.cfg.prune.structure,
    }
    arch = src.cfg.model.arch
    if ":" in arch and not arch.startswith("torchvision:"):  # the user's own network
        meta["factory"] = {"name": arch, "args": dict(src.cfg.model.args)}
    header: dict[str, Any] = {"meta": meta, "encoded": {}}
    tensors: dict[str, torch.Tensor] = {}
    message = facts_note(src, probe)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if fmt == "dense":
        tensors = state
    elif fmt == "sparse":
        for name, value in state.items():
            if name in src.masks and value.dim() >= 2:  # weights; biases and norms dense
                desc, parts = encode_sparse(value, src.masks[name])
                header["encoded"][name] = desc
                tensors.update({f"{name}:{k}": v for k, v in parts.items()})
            else:
                tensors[name] = value
    elif src.cfg.prune.structure == "unit":
        small, meta["shrink"] = shrink_units(src, model)
        tensors = {k: v.detach().clone() for k, v in small.state_dict().items()}
        meta["shapes"] = shapes(small)
        message += "Shrinking " + unit_summary(meta["shrink"]) + "."
    else:
        unit = "units" if src.cfg.model.arch == "lenet-300-100" else "channels"
        try:
            shrunk = shrink(state, chain_of(model), unit_word=unit)
        except ShrinkError as err:
            raise ExportError(str(err)) from err
        tensors = shrunk.state
        if shrunk.input_index is not None:
            tensors["input_index"] = shrunk.input_index.to(
                index_dtype(int(shrunk.input_index.max())) if shrunk.input_index.numel()
                else torch.int16)
        meta["shrink"] = {"removed": shrunk.report.removed,
                          "units_before": shrunk.report.units_before,
                          "units_after": shrunk.report.units_after,
                          "inputs_before": shrunk.report.inputs_before,
                          "inputs_after": shrunk.report.inputs_after}
        message += "Shrinking " + shrunk.report.summary() + "."
    return Exported(to_bytes(header, tensors), header, message.rstrip("\n"))


def shrink_units(src: Source, model: nn.Module) -> tuple[nn.Module, dict[str, Any]]:
    """The unit-pruned ``model`` without its removed units, and what shrinking removed."""
    from prunetui.structure.graph import unit_groups
    from prunetui.structure.shrink import shrink as shrink_network

    generator = torch.Generator().manual_seed(0)
    shape = src.input_shape()
    try:
        groups = unit_groups(model, torch.zeros(2, *shape))
        units = unit_masks_from(src.masks, groups)
        small = shrink_network(model, units, groups,
                               torch.randn(8, *shape, generator=generator))
    except ValueError as err:  # CouplingError, ShrinkError: the message names the layer
        raise ExportError(f"Cannot shrink {src.run.path} round {src.round} {src.scheme}: "
                          f"{err}") from err
    before = {g.modules()[0]: g.size for g in groups if g.layers}
    after = {g.modules()[0]: int(units[g.layers[0]].sum().item()) for g in groups if g.layers}
    return small.eval(), {
        "structure": "unit", "removed": sum(before[k] - after[k] for k in before),
        "units_before": before, "units_after": after,
        "params_before": sum(p.numel() for p in model.parameters()),
        "params_after": sum(p.numel() for p in small.parameters())}


def unit_summary(report: dict[str, Any]) -> str:
    """``removed 160 units and channels (fc1 300->240, ...): 18.1% of 266,610 parameters
    left``."""
    before, after = report["units_before"], report["units_after"]
    changed = [f"{k} {before[k]}->{after[k]}" for k in before if before[k] != after[k]]
    share = report["params_after"] / max(1, report["params_before"])
    return (f"removed {report['removed']} units and channels ({', '.join(changed) or 'none'}): "
            f"{100 * share:.1f}% of {report['params_before']:,} parameters left")


def export(src: Source, fmt: str, out: str | Path) -> Exported:
    exported = build_export(src, fmt)
    store.atomic_write(Path(out), lambda fh: fh.write(exported.data))
    return exported


__all__ = ["Exported", "build_export", "chain_of", "class_names", "export",
           "face_preparation", "facts_note", "input_normalization", "shrink_units",
           "unit_summary"]
