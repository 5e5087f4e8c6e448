"""The one error every bad setting becomes: it names the key, the value, what is allowed and
the file it came from."""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """A setting that cannot be used; ``str()`` is a one-paragraph message for the user."""

    def __init__(self, key: str, value: Any, allowed: str, source: str | None = None) -> None:
        self.key, self.value, self.allowed, self.source = key, value, allowed, source
        where = f" in {source}" if source else ""
        super().__init__(f"Invalid setting {key} = {value!r}{where}: {allowed}.")

    def with_source(self, source: str) -> ConfigError:
        return ConfigError(self.key, self.value, self.allowed, source)

