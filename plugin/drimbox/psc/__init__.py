"""Pro Santé Connect: the OpenID Connect client, the professional model, signed session values.

Names are loaded on first use, so that reading ``drimbox.psc.settings`` (done by ``drimbox.config``) does not
import the HTTP and JOSE libraries.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AccessReason": "drimbox.psc.access_reason",
    "Activity": "drimbox.psc.model",
    "ActivityChoice": "drimbox.psc.model",
    "Exercice": "drimbox.psc.model",
    "Introspection": "drimbox.psc.model",
    "Professional": "drimbox.psc.model",
    "Tokens": "drimbox.psc.model",
    "PscClient": "drimbox.psc.client",
    "PscError": "drimbox.psc.errors",
    "parse_userinfo": "drimbox.psc.userinfo",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'drimbox.psc' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
