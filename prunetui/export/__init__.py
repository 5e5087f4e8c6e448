"""Export a finished round as a model that is really smaller, and load it back with one call.

Formats (``FORMATS``): ``sparse`` (surviving weights only, CSR or bitmask, whichever is
smaller, with the narrowest integer type that holds the indices; loads into ordinary dense
layers: CPU PyTorch has no fast sparse convolution, and for LeNet sparse matmul only pays at
extreme sparsity, see footprint.py), ``dense`` (the masked state dict) and ``shrunk`` (dead
units and channels removed, shrink.py).

Each concept has its own module; this package re-exports their public names:

- :mod:`prunetui.export.source`: which finished segment (``choose``, ``load_source``);
- :mod:`prunetui.export.fileformat`: the file (encodings, header + blob + SHA-256, reading);
- :mod:`prunetui.export.build`: writing one (``build_export``, ``export``);
- :mod:`prunetui.export.model`: loading one (``load_pruned``, ``PrunedModel``);
- :mod:`prunetui.export.inputs`: model input from images (``PrunedModel.prepare``).
"""

from prunetui.export.build import (
    Exported,
    build_export,
    chain_of,
    class_names,
    export,
    input_normalization,
)
from prunetui.export.fileformat import (
    FORMAT_TAG,
    FORMAT_VERSION,
    FORMATS,
    ExportError,
    decode_sparse,
    encode_sparse,
    index_dtype,
    pack_bits,
    read_bytes,
    read_file,
    to_bytes,
    unpack_bits,
)
from prunetui.export.inputs import prepare_images
from prunetui.export.model import PrunedModel, load_pruned, model_from
from prunetui.export.source import (
    ACCURACY_TOLERANCE,
    Choice,
    Rows,
    Source,
    choose,
    finished_segments,
    load_source,
    run_config,
)

__all__ = [
    "ACCURACY_TOLERANCE", "FORMATS", "FORMAT_TAG", "FORMAT_VERSION", "Choice", "ExportError",
    "Exported", "PrunedModel", "Rows", "Source", "build_export", "chain_of", "choose",
    "class_names",
    "decode_sparse", "encode_sparse", "export", "finished_segments", "index_dtype",
    "input_normalization", "load_pruned", "load_source", "model_from", "pack_bits",
    "prepare_images",
    "read_bytes", "read_file", "run_config", "to_bytes", "unpack_bits",
]
