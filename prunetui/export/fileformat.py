"""The export file: sparse encodings of pruned weights, and the checksummed container.

Layout: ``torch.save`` of a dict holding a format tag and version, a JSON header (metadata,
tensor table, encodings), one uint8 blob with every tensor's bytes, and the SHA-256 of header
and blob. It is read with ``torch.load(weights_only=True)``, which never runs code from the
file; the checksum then catches truncation and tampering. Every failure is an ``ExportError``.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import warnings
from pathlib import Path
from typing import Any

import torch

from prunetui.version import __version__

FORMATS = ("sparse", "dense", "shrunk")
FORMAT_TAG = "prunetui-export"
FORMAT_VERSION = 1
_DTYPES = {name: getattr(torch, name) for name in
           ("float32", "float64", "float16", "bfloat16", "uint8", "int8", "int16", "int32",
            "int64", "bool")}
_ALIGN = 8


class ExportError(RuntimeError):
    """An export cannot be written or a file cannot be loaded; the message says why."""


MAKE_ONE = "prunetui export RUN OUT.pt"


def damaged(path: Path, why: str) -> ExportError:
    """The error for a damaged export, with how to make a good one."""
    return ExportError(f"{path} cannot be loaded: {why}; export it again with: {MAKE_ONE}")


def foreign(path: Path, what: str) -> ExportError:
    """The error for a file that is not an export at all (``what`` it seems to be instead)."""
    return ExportError(f"{path} cannot be loaded: it is not a prunetui export ({what}); make one "
                       f"with: {MAKE_ONE}")


def torch_reason(err: BaseException) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, without torch's advice to load it
    with ``weights_only=False`` (which would run code from an untrusted file)."""
    text = str(err).strip()
    if "Weights only load failed" in text:
        return "a pickle with Python objects other than tensors and plain data, never loaded"
    line = text.splitlines()[0][:160] if text else ""
    if not line or "weights_only" in line or "trust" in line or line.strip("'\"").isdigit():
        return f"unreadable as a PyTorch file: {type(err).__name__}"
    return line


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
        # reshape(-1): a 0-d tensor (BatchNorm's num_batches_tracked) has no byte view
        data = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
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
    """The file contents: ``header`` (its tensor table added) and ``tensors``, in their order."""
    table, blob = _pack(tensors)
    header = {**header, "tensors": table}
    header_bytes = json.dumps(header, sort_keys=True).encode("utf-8")
    buffer = io.BytesIO()
    torch.save({"format": FORMAT_TAG, "version": FORMAT_VERSION,
                "sha256": _digest(header_bytes, blob), "header": header_bytes.decode("utf-8"),
                "blob": torch.frombuffer(bytearray(blob), dtype=torch.uint8) if blob
                else torch.empty(0, dtype=torch.uint8)}, buffer)
    return buffer.getvalue()


def read_file(path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Header and tensors of an export file, checksum verified."""
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path} does not exist or is not a file.")
    return _load(path, path)


def read_bytes(data: bytes) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Header and tensors of export file contents held in memory, checksum verified."""
    return _load(io.BytesIO(data), Path("<bytes>"))


def _load(source: Any, path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    try:
        with warnings.catch_warnings():  # foreign pickles warn about their protocol
            warnings.simplefilter("ignore")
            raw = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as err:  # the restricted unpickler raises many types on foreign bytes
        raise foreign(path, f"another kind of file, or a truncated one: {torch_reason(err)}") \
            from None  # torch's message advises loading untrusted files unsafely
    if not isinstance(raw, dict) or raw.get("format") != FORMAT_TAG:
        raise foreign(path, "a PyTorch file without the prunetui-export tag, e.g. a run "
                      "checkpoint")
    if raw.get("version") != FORMAT_VERSION:
        raise ExportError(f"{path} has export format version {raw.get('version')!r}; this "
                          f"prunetui ({__version__}) reads version {FORMAT_VERSION}.")
    header_text, blob_t = raw.get("header"), raw.get("blob")
    if not isinstance(header_text, str) or not isinstance(blob_t, torch.Tensor) \
            or blob_t.dtype != torch.uint8:
        raise damaged(path, "its header or data is missing")
    blob = blob_t.numpy().tobytes()
    if _digest(header_text.encode("utf-8"), blob) != raw.get("sha256"):
        raise damaged(path, "its SHA-256 checksum does not match (the file was modified or "
                      "damaged)")
    try:
        header = json.loads(header_text)
        tensors = _unpack(header["tensors"], blob)
    except (ValueError, KeyError, TypeError, RuntimeError) as err:
        raise damaged(path, f"its contents are inconsistent ({err})") from err
    return header, tensors


__all__ = ["FORMATS", "FORMAT_TAG", "FORMAT_VERSION", "MAKE_ONE", "ExportError", "damaged",
           "decode_sparse", "encode_sparse", "foreign", "index_dtype", "pack_bits",
           "read_bytes", "read_file", "to_bytes", "torch_reason", "unpack_bits"]
