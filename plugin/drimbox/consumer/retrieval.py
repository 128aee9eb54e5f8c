"""What to fetch for one exam: every Retrieve URL of its KOS, checked against the whitelist in force.

A Retrieve URL is never used as given: it is parsed, checked (https, a ``db`` host of the list, a path that
ends in ``/studies/<study>/series/<series>`` for the KOS's own study and series) and rebuilt from the parts.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit

from drimbox.kos.reader import ManifestSummary

UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_BASE_PATH_RE = re.compile(r"^(/[A-Za-z0-9._~-]+)*$")


@dataclass(frozen=True)
class SeriesSource:
    """One series to fetch: the WADO-RS base of the source box and the UIDs (rebuilt, not copied)."""

    host: str  # host[:port] as checked against the whitelist
    base_url: str  # https://host[:port]/<wado-rs path>
    study_uid: str
    series_uid: str
    instance_count: int

    @property
    def url(self) -> str:
        return f"{self.base_url}/studies/{self.study_uid}/series/{self.series_uid}"


@dataclass(frozen=True)
class RetrievalPlan:
    kos_uid: str
    study_uid: str
    series: list[SeriesSource] = field(default_factory=list)
    refused_hosts: list[str] = field(default_factory=list)  # Retrieve URL hosts not in the whitelist
    malformed: list[str] = field(default_factory=list)  # series whose Retrieve URL cannot be used

    @property
    def usable(self) -> bool:
        return bool(self.series) and not self.refused_hosts and not self.malformed


def plan_retrieval(manifest: ManifestSummary, is_trusted_db_host: Callable[[str], bool]) -> RetrievalPlan:
    """Check every series of ``manifest``; one untrusted host refuses the whole exam (the page says which)."""
    series, refused, malformed = [], [], []
    for item in manifest.series:
        source = _source(item.retrieve_url, manifest.study_uid, item.series_uid, len(item.instances))
        if source is None:
            malformed.append(item.series_uid)
        elif not is_trusted_db_host(source.host):
            if source.host not in refused:
                refused.append(source.host)
        else:
            series.append(source)
    return RetrievalPlan(manifest.sop_instance_uid, manifest.study_uid, series, refused, malformed)


def _source(url: str, study_uid: str, series_uid: str, count: int) -> SeriesSource | None:
    if not (UID_RE.match(study_uid) and UID_RE.match(series_uid)):
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.password:
        return None
    if parts.query or parts.fragment:
        return None
    path = unquote(parts.path.rstrip("/"))
    suffix = f"/studies/{study_uid}/series/{series_uid}"
    if not path.endswith(suffix):
        return None
    base_path = path[:-len(suffix)]
    if not _BASE_PATH_RE.match(base_path) or any(s in (".", "..") for s in base_path.split("/")):
        return None
    host = parts.hostname.lower() + (f":{port}" if port and port != 443 else "")
    base_url = f"https://{host}{quote(base_path)}"
    return SeriesSource(host, base_url, study_uid, series_uid, count)
