"""JSON from outside, parsed only when shallow.

Python's json decoder recurses once per nested array or object. In Orthanc's HTTP worker threads (small C
stacks) a few thousand levels, such as a 2 kB bearer token, overflow the stack and kill the whole Orthanc
process before any RecursionError can be raised. Untrusted JSON is therefore measured first, without recursion.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 64
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


class JsonTooDeep(ValueError):
    """The text nests arrays/objects deeper than allowed (a ValueError, like json's own errors)."""


def nesting_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in ``text`` (brackets inside JSON strings do not count)."""
    depth = deepest = 0
    for char in _STRING.sub("", text):
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def loads_untrusted(data: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` for text that came from outside; raises ValueError when malformed or nested too deep."""
    text = data.decode("utf-8-sig") if isinstance(data, (bytes, bytearray)) else data
    if nesting_depth(text) > max_depth:
        raise JsonTooDeep(f"JSON nested deeper than {max_depth} levels")
    return json.loads(text)
