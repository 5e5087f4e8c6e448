"""Sweeps: one SWEEP.toml expanded into ordinary runs grouped under ``models/<sweep>/``.

Each concept has its own module; this package re-exports their public names so callers can
write ``sweep.load_spec``, ``sweep.comparison``:

- :mod:`prunetui.sweep.spec`: the sweep file, its expansion into runs (the file's format);
- :mod:`prunetui.sweep.folder`: the sweep folder, its record ``sweep.toml`` and its runs;
- :mod:`prunetui.sweep.compare`: mean, 95% t-interval and range over seeds per setting, scheme
  and round;
- :mod:`prunetui.sweep.progress`: each run's state and progress, the sweep's runs-list row.

Readers of a sweep import no torch.
"""

from prunetui.sweep.compare import (
    ComparisonRow,
    comparison,
    comparison_csv,
    comparison_curves,
    comparison_table,
    ranges_below,
    table_width,
)
from prunetui.sweep.folder import (
    RECORD_FILE,
    SweepDir,
    extract_datasets,
    grouped_runs,
    is_sweep,
    list_sweeps,
    prepare,
)
from prunetui.sweep.progress import (
    SweepRunProgress,
    run_states,
    summarize,
    sweep_signature,
    sweep_summary,
)
from prunetui.sweep.spec import (
    SEED_KEYS,
    TOP_KEYS,
    SweepError,
    SweepRun,
    SweepSpec,
    cell_text,
    expand,
    find_sweep_file,
    load_spec,
    resolve_base,
    with_threads,
)

__all__ = [
    "RECORD_FILE", "SEED_KEYS", "TOP_KEYS", "ComparisonRow", "SweepDir",
    "SweepError", "SweepRun", "SweepRunProgress", "SweepSpec", "cell_text", "comparison",
    "comparison_csv", "comparison_curves", "comparison_table", "expand", "extract_datasets",
    "find_sweep_file", "grouped_runs", "is_sweep", "list_sweeps", "load_spec", "prepare",
    "ranges_below", "resolve_base", "run_states", "summarize", "sweep_signature",
    "sweep_summary", "table_width", "with_threads",
]
