"""What is damaged in a run folder, told in one line (for warnings, titles and notices)."""

from __future__ import annotations

from prunetui.config import ConfigError
from prunetui.store import LineProblem, RunDir


def config_problem(run: RunDir, err: Exception) -> str:
    """What is wrong with a run's config.toml, in one line (ConfigError says it already)."""
    if isinstance(err, ConfigError):
        return str(err)
    return f"{run.config_path} cannot be read: {err}"


def describe_problems(problems: list[LineProblem], most: int = 3) -> str:
    """``metrics.jsonl line 12: not valid JSON; ... (and 4 more)``: one line for a warning."""
    text = "; ".join(str(p) for p in problems[:most])
    more = len(problems) - most
    return text + (f" (and {more} more)" if more > 0 else "")
