"""UIDs this box creates (KOS SOP and series instance UIDs)."""

from __future__ import annotations

import re
import uuid

MAX_UID_LENGTH = 64
# Fewer random digits than this would make collisions plausible (16 digits ~ 53 bits).
_MIN_RANDOM_DIGITS = 16
_UID_PATTERN = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")


def is_valid_uid(uid: str) -> bool:
    return len(uid) <= MAX_UID_LENGTH and bool(_UID_PATTERN.match(uid))


def new_uid(root: str) -> str:
    """A fresh UID ``<root>.<random digits>`` of at most 64 characters.

    The suffix is the decimal form of a random UUID, cut to the room left by the root, so two calls
    never return the same UID in practice.
    """
    root = root.rstrip(".")
    if not _UID_PATTERN.match(root):
        raise ValueError(f"UID root must be a dotted numeric OID without leading zeros, got {root!r}")
    room = MAX_UID_LENGTH - len(root) - 1
    if room < _MIN_RANDOM_DIGITS:
        raise ValueError(
            f"UID root {root!r} is {len(root)} characters long: at most "
            f"{MAX_UID_LENGTH - 1 - _MIN_RANDOM_DIGITS} leaves room for a unique suffix")
    return f"{root}.{str(uuid.uuid4().int)[:room]}"
