"""Export a finished round as a model that is really smaller, and load it back with one call.

Formats (``FORMATS``):

- ``sparse``: each prunable weight keeps only its surviving values, in CSR or as a bitmask,
  whichever is smaller, with the narrowest integer type that holds the indices; biases and
  other tensors stay dense. Loads into ordinary dense layers (CPU PyTorch has no fast sparse
  convolution, and for LeNet sparse matmul only pays at extreme sparsity: see footprint.py).
- ``dense``: the masked network as a plain state dict.
- ``shrunk``: units and channels that cannot matter removed (shrink.py): smaller dense layers
  computing the same function.

File layout: ``torch.save`` of a dict holding a format tag and version, a JSON header (metadata,
tensor table, encodings), one uint8 blob with every tensor's bytes, and the SHA-256 of header
and blob. It is read with ``torch.load(weights_only=True)``, which never runs code from the
file; the checksum then catches truncation and tampering. Every failure is an ``ExportError``.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from prunetui import config, results, store
from prunetui.version import __version__
from prunetui.nets import build_model, weight_layers
from prunetui.shrink import ChainLayer, ShrinkError, shrink

FORMATS = ("sparse", "dense", "shrunk")
FORMAT_TAG = "prunetui-export"
FORMAT_VERSION = 1
ACCURACY_TOLERANCE = 0.005  # default choice: within 0.5 points of the dense network
_DTYPES = {name: getattr(torch, name) for name in
           ("float32", "float64", "float16", "bfloat16", "uint8", "int8", "int16", "int32",
            "int64", "bool")}
_ALIGN = 8


class ExportError(RuntimeError):
    """An export cannot be written or a file cannot be loaded; the message says why."""


# ---------------------------------------------------------------------------------------------
# The source: one finished segment of a run


@dataclass
class Source:
    run: store.RunDir
    cfg: config.Config
    replicate: int
    round: int
    scheme: str
    weights: dict[str, torch.Tensor]  # masked: pruned weights exactly zero
    masks: dict[str, torch.Tensor]  # bool, per prunable weight
    remaining: float
    test_acc: float  # of these (final) weights, from the segment's last evaluation
    early_stop_test_acc: float

    def input_shape(self) -> tuple[int, ...]:
        if self.cfg.data.dataset == "faces":
            return (1, self.cfg.data.crop, self.cfg.data.crop)
        return (1, 28, 28)

    def num_classes(self) -> int:
        # Both networks register their classifier last (nets/__init__.py).
        last = [v for k, v in self.weights.items() if k.endswith(".weight") and v.dim() >= 2]
        return int(last[-1].shape[0])

    def build(self) -> nn.Module:
        """The masked network, in eval mode."""
        model = build_model(self.cfg.model, self.input_shape(), self.num_classes())
        model.load_state_dict(self.weights)
        return model.eval()


@dataclass(frozen=True)
class Choice:
    replicate: int
    round: int
    scheme: str
    reason: str


def finished_segments(run: store.RunDir, replicate: int) -> list[results.SegmentResult]:
    """Segments of ``replicate`` whose final checkpoint exists, from metrics.jsonl."""
    return [s for s in results.segment_results(run.metrics())
            if s.replicate == replicate
            and run.segment_checkpoint(s.replicate, s.round, s.scheme).exists()]


def choose(run: store.RunDir, round_: int | None = None, scheme: str | None = None,
           replicate: int = 0) -> Choice:
    """The segment to export: the one asked for, or by default the smallest remaining fraction
    whose test accuracy at early stop is within 0.5 points of the dense network's."""
    segs = finished_segments(run, replicate)
    if not segs:
        raise ExportError(f"{run.path} has no finished round for replicate {replicate} yet; "
                          "wait for round 0 to finish (prunetui runs shows progress).")
    dense = next((s for s in segs if s.round == 0), None)
    pool = [s for s in segs if (round_ is None or s.round == round_)
            and (scheme is None or s.scheme == scheme or (s.round == 0 and scheme == "dense"))]
    if scheme is not None and round_ is None:
        pool = [s for s in pool if s.round > 0] or pool
    if not pool:
        have = ", ".join(sorted({f"{s.round}/{s.scheme}" for s in segs}))
        raise ExportError(f"{run.path} has no finished round {round_ if round_ is not None else ''}"
                          f"{' ' + scheme if scheme else ''} for replicate {replicate}; "
                          f"finished (round/scheme): {have}.")
    if round_ is not None and scheme is not None:
        seg = pool[0]
        return Choice(replicate, seg.round, seg.scheme, "as asked")
    base = dense.test_acc if dense else max(s.test_acc for s in pool)
    near = [s for s in pool if s.test_acc >= base - ACCURACY_TOLERANCE - 1e-12]
    if near:
        seg = min(near, key=lambda s: (s.remaining, -s.test_acc))
        why = (f"the smallest fraction of weights left ({100 * seg.remaining:.1f}%) whose test "
               f"accuracy at early stop ({100 * seg.test_acc:.2f}%) is at most 0.5 points below "
               f"the dense network's ({100 * base:.2f}%)")
    else:
        seg = max(pool, key=lambda s: (s.test_acc, -s.remaining))
        why = (f"no candidate is within 0.5 points of the dense network's {100 * base:.2f}%, "
               f"so the most accurate one ({100 * seg.test_acc:.2f}%)")
    return Choice(replicate, seg.round, seg.scheme, why)


def load_source(run: store.RunDir, choice: Choice) -> Source:
    try:
        cfg = run.config()
    except config.ConfigError as err:
        raise ExportError(f"{run.path}: {err}") from err
    path = run.segment_checkpoint(choice.replicate, choice.round, choice.scheme)
    try:
        ckpt = store.load_checkpoint(path)
        masks = {k: v.bool() for k, v in ckpt["masks"].items()}
        weights = {k: v.clone() for k, v in ckpt["weights"].items()}
        result = ckpt["result"]
    except (store.StoreError, KeyError, TypeError, AttributeError) as err:
        raise ExportError(f"Cannot export from {path}: {err}") from err
    for name, mask in masks.items():
        weights[name] = weights[name] * mask
    rows = [r for r in run.metrics() if (r["replicate"], r["round"], r["scheme"]) ==
            (choice.replicate, choice.round, choice.scheme)]
    last = max(rows, key=lambda r: r["iteration"]) if rows else None
    return Source(run=run, cfg=cfg, replicate=choice.replicate, round=choice.round,
                  scheme=choice.scheme, weights=weights, masks=masks,
                  remaining=float(result["remaining"]),
                  test_acc=float(last["test_acc"]) if last else float("nan"),
                  early_stop_test_acc=float(result["test_acc"]))


# ---------------------------------------------------------------------------------------------
# Encodings of one pruned weight


def index_dtype(largest: int) -> torch.dtype:
    """The narrowest integer type holding 0..largest."""
    for dtype in (torch.uint8, torch.int16, torch.int32):
        if largest <= torch.iinfo(dtype).max:
            return dtype
    return torch.int64


def encode_sparse(weight: torch.Tensor, mask: torch.Tensor) -> tuple[dict, dict]:
    """(encoding description, tensors) of a masked weight: CSR or bitmask, the smaller."""
    rows = weight.shape[0]
    flat_mask = mask.reshape(rows, -1)
    cols = flat_mask.shape[1]
    values = weight.reshape(rows, -1)[flat_mask].contiguous()
    nnz = values.numel()
    col_t, crow_t = index_dtype(cols - 1), index_dtype(nnz)
    csr_bytes = nnz * col_t.itemsize + (rows + 1) * crow_t.itemsize
    bitmask_bytes = math.ceil(mask.numel() / 8)
    shape = list(weight.shape)
    if csr_bytes <= bitmask_bytes:
        crow = torch.zeros(rows + 1, dtype=torch.int64)
        crow[1:] = flat_mask.sum(dim=1).cumsum(0)
        col = flat_mask.nonzero()[:, 1]
        return ({"layout": "csr", "shape": shape},
                {"values": values, "crow": crow.to(crow_t), "col": col.to(col_t)})
    return {"layout": "bitmask", "shape": shape}, {"values": values, "bits": pack_bits(mask)}


def decode_sparse(desc: dict, parts: dict[str, torch.Tensor]) -> torch.Tensor:
    shape = desc["shape"]
    rows, numel = shape[0], math.prod(shape)
    values = parts["values"]
    if desc["layout"] == "csr":
        crow, col = parts["crow"].long(), parts["col"].long()
        counts = crow.diff()
        if crow[0] != 0 or (counts < 0).any() or crow[-1] != values.numel() \
                or col.numel() != values.numel() or (col >= numel // rows).any():
            raise ValueError("inconsistent CSR indices")
        dense = torch.zeros(rows, numel // rows, dtype=values.dtype)
        dense[torch.repeat_interleave(torch.arange(rows), counts), col] = values
        return dense.reshape(shape)
    if desc["layout"] == "bitmask":
        mask = unpack_bits(parts["bits"], numel)
        if int(mask.sum()) != values.numel():
            raise ValueError("bitmask and values disagree")
        dense = torch.zeros(numel, dtype=values.dtype)
        dense[mask] = values
        return dense.reshape(shape)
    raise ValueError(f"unknown layout {desc['layout']!r}")


def pack_bits(mask: torch.Tensor) -> torch.Tensor:
    flat = mask.flatten().to(torch.uint8)
    flat = torch.cat([flat, flat.new_zeros((-flat.numel()) % 8)]).reshape(-1, 8)
    weights = torch.tensor([1 << i for i in range(8)], dtype=torch.uint8)
    return (flat * weights).sum(dim=1, dtype=torch.uint8)


def unpack_bits(bits: torch.Tensor, numel: int) -> torch.Tensor:
    shifts = torch.arange(8, dtype=torch.uint8)
    return ((bits[:, None] >> shifts) & 1).flatten()[:numel].bool()


# ---------------------------------------------------------------------------------------------
# Container: header + blob + checksum


def _pack(tensors: dict[str, torch.Tensor]) -> tuple[dict[str, dict], bytes]:
    table, chunks, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        data = t.view(torch.uint8).numpy().tobytes() if t.numel() else b""
        pad = (-offset) % _ALIGN
        chunks.append(b"\0" * pad)
        offset += pad
        table[name] = {"dtype": str(t.dtype).removeprefix("torch."), "shape": list(t.shape),
                       "offset": offset, "nbytes": len(data)}
        chunks.append(data)
        offset += len(data)
    return table, b"".join(chunks)


def _unpack(table: dict[str, dict], blob: bytes) -> dict[str, torch.Tensor]:
    out = {}
    for name, entry in table.items():
        dtype = _DTYPES[entry["dtype"]]
        start, nbytes = int(entry["offset"]), int(entry["nbytes"])
        if start < 0 or start + nbytes > len(blob):
            raise ValueError(f"tensor {name} lies outside the data")
        raw = torch.frombuffer(bytearray(blob[start:start + nbytes]), dtype=torch.uint8) \
            if nbytes else torch.empty(0, dtype=torch.uint8)
        out[name] = raw.view(dtype).reshape(entry["shape"]).clone()
    return out


def _digest(header: bytes, blob: bytes) -> str:
    return hashlib.sha256(header + b"\0" + blob).hexdigest()


def to_bytes(header: dict[str, Any], tensors: dict[str, torch.Tensor]) -> bytes:
    table, blob = _pack(tensors)
    header = {**header, "tensors": table}
    header_bytes = json.dumps(header, sort_keys=True).encode("utf-8")
    buffer = io.BytesIO()
    torch.save({"format": FORMAT_TAG, "version": FORMAT_VERSION,
                "sha256": _digest(header_bytes, blob), "header": header_bytes.decode("utf-8"),
                "blob": torch.frombuffer(bytearray(blob), dtype=torch.uint8) if blob
                else torch.empty(0, dtype=torch.uint8)}, buffer)
    return buffer.getvalue()


def _damaged(path: Path, why: str) -> ExportError:
    return ExportError(f"{path} cannot be loaded: {why}. Export it again with: prunetui export "
                       "RUN OUT")


def read_file(path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Header and tensors of an export file, checksum verified."""
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path} does not exist or is not a file.")
    return _load(path, path)


def read_bytes(data: bytes) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    return _load(io.BytesIO(data), Path("<bytes>"))


def _load(source: Any, path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    try:
        with warnings.catch_warnings():  # foreign pickles warn about their protocol
            warnings.simplefilter("ignore")
            raw = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as err:  # the restricted unpickler raises many types on foreign bytes
        first = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise _damaged(path, f"it is not a readable prunetui export (truncated, damaged or "
                       f"another kind of file: {first})") from err
    if not isinstance(raw, dict) or raw.get("format") != FORMAT_TAG:
        raise _damaged(path, "it is not a prunetui export file (no prunetui-export tag; a run "
                       "checkpoint is exported with: prunetui export RUN OUT)")
    if raw.get("version") != FORMAT_VERSION:
        raise ExportError(f"{path} has export format version {raw.get('version')!r}; this "
                          f"prunetui ({__version__}) reads version {FORMAT_VERSION}.")
    header_text, blob_t = raw.get("header"), raw.get("blob")
    if not isinstance(header_text, str) or not isinstance(blob_t, torch.Tensor) \
            or blob_t.dtype != torch.uint8:
        raise _damaged(path, "its header or data is missing")
    blob = blob_t.numpy().tobytes()
    if _digest(header_text.encode("utf-8"), blob) != raw.get("sha256"):
        raise _damaged(path, "its SHA-256 checksum does not match (the file was modified or "
                       "damaged)")
    try:
        header = json.loads(header_text)
        tensors = _unpack(header["tensors"], blob)
    except (ValueError, KeyError, TypeError, RuntimeError) as err:
        raise _damaged(path, f"its contents are inconsistent ({err})") from err
    return header, tensors


# ---------------------------------------------------------------------------------------------
# Writing


def chain_of(model: nn.Module) -> list[ChainLayer]:
    from prunetui.nets.lightcnn import MFMConv2d, MFMLinear

    return [ChainLayer(name, isinstance(m, (MFMConv2d, MFMLinear)))
            for name, m in weight_layers(model)]


def input_normalization(src: Source) -> dict[str, float] | None:
    """Mean and std of pixel/255 that model inputs are normalized with (None when unknown)."""
    data = src.cfg.data
    if data.dataset in ("mnist", "fashion-mnist"):
        from prunetui.data.mnist import NORMALIZATION

        mean, std = NORMALIZATION[data.dataset]
        return {"mean": mean, "std": std}
    return _face_stats(data)


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


@dataclass
class Exported:
    data: bytes
    header: dict[str, Any]
    message: str  # e.g. what shrinking removed


def build_export(src: Source, fmt: str, normalization: dict[str, float] | None = None) -> Exported:
    """The file contents of ``src`` in format ``fmt``."""
    if fmt not in FORMATS:
        raise ExportError(f"Unknown format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    model = src.build()
    meta = {
        "run": src.run.name, "run_path": str(src.run.path), "round": src.round,
        "scheme": src.scheme, "replicate": src.replicate, "remaining": src.remaining,
        "test_acc": src.test_acc, "early_stop_test_acc": src.early_stop_test_acc,
        "config": config.to_dict(src.cfg), "prunetui_version": __version__,
        "torch_version": torch.__version__, "format": fmt, "arch": src.cfg.model.arch,
        "input_shape": list(src.input_shape()), "num_classes": src.num_classes(),
        "input_normalization": normalization or input_normalization(src),
    }
    header: dict[str, Any] = {"meta": meta, "encoded": {}}
    tensors: dict[str, torch.Tensor] = {}
    message = ""
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if fmt == "dense":
        tensors = state
    elif fmt == "sparse":
        for name, value in state.items():
            if name in src.masks:
                desc, parts = encode_sparse(value, src.masks[name])
                header["encoded"][name] = desc
                tensors.update({f"{name}:{k}": v for k, v in parts.items()})
            else:
                tensors[name] = value
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
        message = "Shrinking " + shrunk.report.summary() + "."
    return Exported(to_bytes(header, tensors), header, message)


def export(src: Source, fmt: str, out: str | Path) -> Exported:
    exported = build_export(src, fmt)
    store.atomic_write(Path(out), lambda fh: fh.write(exported.data))
    return exported


# ---------------------------------------------------------------------------------------------
# Loading


class PrunedModel(nn.Module):
    """A loaded export: the network, plus the input pixels it reads when shrinking dropped some.

    Input: model-ready tensors shaped like the training data (``N x 1 x 28 x 28`` or
    ``N x 784`` for MNIST, ``N x 1 x crop x crop`` for faces), normalized as
    ``(pixel / 255 - mean) / std`` with ``meta["input_normalization"]``; ``prepare`` makes
    them from raw 0-255 images.
    """

    def __init__(self, net: nn.Module, input_index: torch.Tensor | None,
                 meta: dict[str, Any]) -> None:
        super().__init__()
        self.net = net
        self.meta = meta
        self.register_buffer("input_index", input_index)

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """Model input from raw pixel images (0-255, ``N x H x W`` or ``N x 1 x H x W``): centre
        crop to the training crop, then the run's normalization."""
        shape = self.meta["input_shape"]
        norm = self.meta.get("input_normalization")
        if norm is None:
            raise ExportError("This export does not know its input normalization (the face "
                              "folder was not readable when it was written); normalize inputs "
                              "as the run did.")
        x = images.float().reshape(images.shape[0], 1, *images.shape[-2:])
        top, left = (x.shape[-2] - shape[-2]) // 2, (x.shape[-1] - shape[-1]) // 2
        if top < 0 or left < 0:
            raise ExportError(f"Images of {tuple(images.shape[-2:])} pixels are smaller than "
                              f"the model's input {tuple(shape[-2:])}.")
        x = x[..., top:top + shape[-2], left:left + shape[-1]]
        return (x / 255.0 - norm["mean"]) / norm["std"]

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
    meta = header["meta"]
    cfg = config.from_dict(meta["config"])
    net = build_model(cfg.model, tuple(meta["input_shape"]), int(meta["num_classes"]))
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

    Nothing in the file is executed (``torch.load(weights_only=True)``); a truncated, modified
    or foreign file raises :class:`ExportError` with a one-line reason.
    """
    header, tensors = read_file(path)
    try:
        return model_from(header, tensors)
    except (KeyError, TypeError, ValueError, RuntimeError, config.ConfigError) as err:
        raise _damaged(Path(path), f"its network does not match its header ({err})") from err


__all__ = ["FORMATS", "Choice", "ExportError", "PrunedModel", "Source", "build_export",
           "choose", "export", "load_pruned", "load_source", "read_file"]
