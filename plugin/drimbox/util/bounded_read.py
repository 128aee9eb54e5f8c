"""Reading an HTTP answer from a service we do not control (DMP, whitelist and CRL distribution points) with a
size limit and a deadline for the whole body."""

from __future__ import annotations

import time

import requests


class AnswerTooLarge(ValueError):
    """The answer declared or sent more than the limit."""


class AnswerTooSlow(TimeoutError):
    """The answer's body was still arriving when its time was up."""


def read_bounded(response: requests.Response, *, limit: int, seconds: float) -> bytes:
    """The body of ``response`` (opened with ``stream=True``): at most ``limit`` bytes, within ``seconds`` of
    the call. The requests timeout alone bounds each read, so a server sending a byte at a time would hold the
    caller for ever."""
    declared = response.headers.get("Content-Length", "")
    if declared.strip().isdigit() and int(declared) > limit:
        raise AnswerTooLarge(f"answer of {int(declared)} bytes, over the limit of {limit}")
    deadline = time.monotonic() + seconds
    body = bytearray()
    # read1 returns what has arrived, so the deadline is checked while a slow answer trickles in
    while chunk := response.raw.read1(65536, decode_content=True):
        body += chunk
        if len(body) > limit:
            raise AnswerTooLarge(f"answer over the limit of {limit} bytes")
        if time.monotonic() > deadline:
            raise AnswerTooSlow(f"answer still arriving after {seconds:g} s")
    return bytes(body)
