"""The run store: one directory per experiment, the single source of truth for results.

Each concept has its own module; this package re-exports their public names so callers can
write ``store.RunDir``, ``store.load_checkpoint``:

- :mod:`prunetui.fileio`: atomic writes, SHA-256 sidecars, verification (no prunetui imports);
- :mod:`prunetui.store.rows`: the schemas of their rows (``MetricRow``, ``SparsityRecord``);
- :mod:`prunetui.store.jsonl`: the append-only ``metrics.jsonl`` / ``sparsity.jsonl``;
- :mod:`prunetui.store.status`: ``status.json``;
- :mod:`prunetui.store.runtime`: ``runtime.json`` (threads, device, precision a run used);
- :mod:`prunetui.store.checkpoint`: checkpoint files and their typed schema;
- :mod:`prunetui.store.datafacts`: ``datafacts.json``, the run's data as training saw them;
- :mod:`prunetui.store.layout`: the run directory and where each file lives.

Readers (CLI ``runs``/``report``, the app) import no torch: only checkpoint I/O needs it, and
imports it lazily.
"""

from prunetui.fileio import (
    DAMAGED,
    INTACT,
    MISSING,
    SIDECAR,
    UNVERIFIED,
    DamagedFile,
    StoreError,
    atomic_write,
    atomic_write_text,
    files_signature,
    move_aside,
    prefix_digest,
    recorded_digests,
    remove_checked,
    sha256,
    sidecar,
    truncate,
    verify,
    write_checked,
)
from prunetui.store.checkpoint import (
    CannotResume,
    SegmentCheckpoint,
    SegmentOutcome,
    StoreOffsets,
    checkpoint_bytes,
    load_checkpoint,
    load_segment,
    save_checkpoint,
)
from prunetui.store.datafacts import (
    DATAFACTS_FILE,
    DataFacts,
    FactsProbe,
    read_facts,
    record_facts,
    write_facts,
)
from prunetui.store.jsonl import (
    JsonlLog,
    JsonlTail,
    LineProblem,
    Schema,
    append_jsonl,
    jsonl_bytes,
    jsonl_line,
    read_jsonl,
    read_jsonl_checked,
    read_jsonl_from,
    torn_tail,
)
from prunetui.store.layout import (
    CHECKPOINT_DIR,
    CONFIG_FILE,
    METRICS_FILE,
    SPARSITY_FILE,
    RunDir,
    check_run_name,
    create_run,
    generated_name,
    list_runs,
    new_run,
    unique_name,
)
from prunetui.store.rows import MetricRow, SegmentKey, SparsityRecord, segment_key
from prunetui.store.runtime import RUNTIME_FILE, RuntimeRecord
from prunetui.store.status import (
    FAILED,
    FINISHED,
    INTERRUPTED,
    RUNNING,
    STATUS_FILE,
    Status,
    pid_alive,
)

__all__ = [
    "CHECKPOINT_DIR", "CONFIG_FILE", "DAMAGED", "DATAFACTS_FILE", "FAILED", "FINISHED", "INTACT",
    "INTERRUPTED", "METRICS_FILE", "MISSING", "RUNNING", "RUNTIME_FILE", "SIDECAR",
    "SPARSITY_FILE", "STATUS_FILE", "UNVERIFIED", "CannotResume", "DamagedFile", "DataFacts",
    "FactsProbe", "JsonlLog", "JsonlTail", "LineProblem", "MetricRow", "RunDir", "RuntimeRecord",
    "Schema", "SegmentCheckpoint", "SegmentKey", "SegmentOutcome", "SparsityRecord", "Status",
    "StoreError", "StoreOffsets", "append_jsonl", "atomic_write", "atomic_write_text",
    "check_run_name", "checkpoint_bytes", "create_run", "files_signature", "generated_name",
    "jsonl_bytes", "jsonl_line", "list_runs", "load_checkpoint", "load_segment", "move_aside",
    "new_run", "pid_alive", "prefix_digest", "read_facts", "read_jsonl", "read_jsonl_checked",
    "read_jsonl_from", "record_facts", "recorded_digests", "remove_checked", "save_checkpoint",
    "segment_key", "sha256", "sidecar", "torn_tail", "truncate", "unique_name", "verify",
    "write_checked", "write_facts",
]
