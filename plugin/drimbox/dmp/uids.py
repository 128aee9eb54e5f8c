"""Fresh identifiers for lots: DICOM-style OIDs under the box's root, and urn:uuid entry ids."""

from __future__ import annotations

import uuid

MAX_UID_LENGTH = 64


def new_urn_uuid() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def uid_under(root: str, arc: str = "") -> str:
    """``<root>[.<arc>].<decimal of a random UUID>`` cut to 64 characters (the decimal never starts with 0)."""
    prefix = f"{root}.{arc}." if arc else f"{root}."
    room = MAX_UID_LENGTH - len(prefix)
    if room < 10:
        raise ValueError(f"OID root {root!r} is too long to build unique 64-character UIDs under it")
    return prefix + str(uuid.uuid4().int)[:room]
