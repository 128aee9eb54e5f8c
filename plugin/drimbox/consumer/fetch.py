"""Moving a series from a source box into the local Orthanc with Orthanc's own DICOMweb client (C++).

Python decides (which series, from which whitelisted host, with which token); Orthanc moves the bytes. The
DICOMweb plugin 1.7 takes servers declared at run time (``PUT /dicom-web/servers/{name}``) with static HTTP
headers and a TLS client certificate, and asks ``transfer-syntax=*`` (the source's stored syntax). Headers
carry the professional's token, so each retrieval gets its own server name, removed as soon as it is done.
Orthanc verifies the source's certificate against its ``HttpsCACertificates``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from drimbox.consumer.retrieval import SeriesSource
from drimbox.pacs.rest import OrthancRest, OrthancRestError

SERVER_PREFIX = "drimbox-consumer-"


@dataclass(frozen=True)
class FetchResult:
    series_uid: str
    ok: bool
    instances: int  # stored in Orthanc for that series after the retrieval
    bytes: int
    error: str = ""


class OrthancFetcher:
    def __init__(self, rest: OrthancRest, *, client_cert: str = "", client_key: str = "",
                 timeout_seconds: int = 600):
        self.rest = rest
        self.client_cert = client_cert
        self.client_key = client_key
        self.timeout_seconds = timeout_seconds

    def fetch_series(self, source: SeriesSource, *, access_token: str, kos_uid: str) -> FetchResult:
        name = SERVER_PREFIX + secrets.token_hex(8)
        server = {"Url": source.base_url + "/", "Timeout": self.timeout_seconds,
                  "HttpHeaders": {"Authorization": f"Bearer {access_token}", "KOS-SOPInstanceUID": kos_uid}}
        if self.client_cert:
            server["CertificateFile"] = self.client_cert
            if self.client_key:
                server["CertificateKeyFile"] = self.client_key
        error = ""
        try:
            self.rest.put_json(f"/dicom-web/servers/{name}", server)
            self.rest.post_json(f"/dicom-web/servers/{name}/retrieve",
                                {"Resources": [{"Study": source.study_uid, "Series": source.series_uid}]})
        except OrthancRestError as failure:  # the source refused or could not be reached: Orthanc says 500
            error = str(failure)
        finally:
            try:
                self.rest.delete(f"/dicom-web/servers/{name}")
            except OrthancRestError:
                pass
        instances, size = self.stored(source.series_uid)
        return FetchResult(source.series_uid, not error and instances >= source.instance_count, instances, size,
                           error or ("" if instances >= source.instance_count else
                                     f"{instances} of {source.instance_count} instances received"))

    def has_study(self, study_uid: str) -> bool:
        return any(m.get("Type") == "Study" for m in self.rest.post_json("/tools/lookup", study_uid))

    def stored(self, series_uid: str) -> tuple[int, int]:
        """(instances, bytes) Orthanc holds for this series."""
        matches = [m for m in self.rest.post_json("/tools/lookup", series_uid) if m.get("Type") == "Series"]
        if not matches:
            return 0, 0
        statistics = self.rest.get_json(f"/series/{matches[0]['ID']}/statistics")
        return int(statistics.get("CountInstances", 0)), int(statistics.get("DiskSize", 0))
