"""The field helper and the error of every settings dataclass (a leaf module: each package's settings import it
without pulling in ``drimbox.config``, which imports them)."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable


class SettingsError(ValueError):
    """A configuration value is missing or wrong; the message names the key and the fix."""


def setting(default: Any = dataclasses.MISSING, doc: str = "", *, factory: Callable[[], Any] | None = None,
            section: type | None = None) -> Any:
    """A settings field whose one-line ``doc`` is what ``drimbox config reference`` prints for its key."""
    metadata: dict[str, Any] = {"doc": doc}
    if section is not None:
        metadata["section"] = section
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)
