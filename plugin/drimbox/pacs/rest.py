"""A small client of Orthanc's loopback REST API for worker threads (never for Orthanc callbacks)."""

from __future__ import annotations

import threading
from typing import Any

import requests

INTERNAL_HEADER = "X-Drimbox-Internal"


class OrthancRestError(RuntimeError):
    def __init__(self, status: int, path: str, text: str = ""):
        super().__init__(f"Orthanc answered {status} to {path}: {text[:200]}")
        self.status = status


class OrthancRest:
    """requests towards Orthanc's HTTP port; the internal secret lets these calls past the plugin's filter."""

    def __init__(self, base_url: str, internal_secret: str = "", timeout: float = 60.0):
        self.base_url = base_url.rstrip("/")
        self.headers = {INTERNAL_HEADER: internal_secret} if internal_secret else {}
        self.timeout = timeout
        self._local = threading.local()

    @property
    def session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.headers.update(self.headers)
        return session

    def _check(self, response: requests.Response, path: str) -> requests.Response:
        if response.status_code >= 400:
            raise OrthancRestError(response.status_code, path, response.text)
        return response

    def get_json(self, path: str, **params: Any) -> Any:
        return self._check(self.session.get(self.base_url + path, params=params or None, timeout=self.timeout),
                           path).json()

    def get_text(self, path: str) -> str:
        return self._check(self.session.get(self.base_url + path, timeout=self.timeout), path).text

    def get_bytes(self, path: str) -> bytes:
        return self._check(self.session.get(self.base_url + path, timeout=self.timeout), path).content

    def post_json(self, path: str, body: Any) -> Any:
        data = body if isinstance(body, (str, bytes)) else None
        response = self.session.post(self.base_url + path, data=data, json=None if data is not None else body,
                                     timeout=self.timeout)
        return self._check(response, path).json()

    def post_for_bytes(self, path: str, body: Any) -> bytes:
        """POST a JSON body, get bytes back (e.g. ``/instances/{id}/modify`` answers the modified file)."""
        return self._check(self.session.post(self.base_url + path, json=body, timeout=self.timeout), path).content

    def put_json(self, path: str, body: Any) -> Any:
        response = self._check(self.session.put(self.base_url + path, json=body, timeout=self.timeout), path)
        return response.json() if response.content.strip() else None

    def post_bytes(self, path: str, body: bytes, content_type: str = "application/dicom") -> Any:
        response = self.session.post(self.base_url + path, data=body, headers={"Content-Type": content_type},
                                     timeout=self.timeout)
        return self._check(response, path).json()

    def delete(self, path: str) -> None:
        self._check(self.session.delete(self.base_url + path, timeout=self.timeout), path)
