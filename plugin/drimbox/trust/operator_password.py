"""Operator passwords: scrypt hashes in a users file (``name:scrypt$n$r$p$salt$hash`` per line)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from pathlib import Path
from typing import Callable

SCHEME = "scrypt"
N, R, P = 2 ** 14, 8, 1
CACHE_SECONDS = 300.0
CACHE_SIZE = 256


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=N, r=R, p=P, dklen=32)
    return f"{SCHEME}${N}${R}${P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = encoded.split("$")
        if scheme != SCHEME:
            return False
        expected = _unb64(digest)
        given = hashlib.scrypt(password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p),
                               dklen=len(expected), maxmem=64 * 1024 * 1024)
    except ValueError:
        return False
    return hmac.compare_digest(given, expected)


# Compared against when the user is unknown, so that an unknown name costs as much time as a known one.
_DUMMY = hash_password("unused", salt=b"\0" * 16)


class OperatorUsers:
    """The users file, read again when it changes (a password change needs no restart)."""

    def __init__(self, path: str, *, clock: Callable[[], float] = time.monotonic):
        self._path = Path(path) if path else None
        self._stamp: tuple[int, int] | None = None
        self._users: dict[str, str] = {}
        self._clock = clock
        # API clients send their password on every request and scrypt costs ~40 ms: a good password is
        # remembered (keyed by a MAC, never in clear) for a few minutes, until the file changes.
        self._key = os.urandom(32)
        self._verified: dict[bytes, float] = {}

    def check(self, user: str, password: str) -> bool:
        users = self._load()
        mark = hmac.new(self._key, f"{self._stamp}\0{user}\0{password}".encode(), hashlib.sha256).digest()
        now = self._clock()
        if self._verified.get(mark, 0.0) > now:
            return True
        encoded = users.get(user)
        ok = verify_password(password, encoded or _DUMMY) and encoded is not None
        if ok:
            if len(self._verified) >= CACHE_SIZE:
                self._verified = {k: t for k, t in self._verified.items() if t > now}
            if len(self._verified) < CACHE_SIZE:
                self._verified[mark] = now + CACHE_SECONDS
        return ok

    def _load(self) -> dict[str, str]:
        if self._path is None:
            return {}
        try:
            stat = self._path.stat()
        except OSError:
            return {}
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            users = {}
            for line in self._path.read_text().splitlines():
                name, sep, encoded = line.strip().partition(":")
                if sep and name and not name.startswith("#"):
                    users[name] = encoded
            self._users, self._stamp = users, stamp
        return self._users
