"""Settings of the consumer role. Owned by the consumer package."""

from __future__ import annotations

from dataclasses import dataclass

from drimbox.config.fields import SettingsError


@dataclass(frozen=True)
class ConsumerSettings:
    enabled: bool = True
    context_minutes: int = 120  # lifetime of a working context (one appel contextuel)
    # The INS number and its OID are shown on demand (a button) rather than in the header; false hides them.
    show_ins_on_demand: bool = True
    statistics_delimiter: str = ";"  # of the national statistics CSV
    cache_hours: float = 72.0  # how long a retrieved (foreign) study stays in the local Orthanc unless imported
    purge_interval_seconds: float = 300.0  # how often expired cached studies and contexts are removed
    # "Import into my PACS": the local PACS that receives imported studies by C-STORE (empty AET: none)
    import_aet: str = ""
    import_host: str = "127.0.0.1"
    import_port: int = 104
    # whether the import form proposes, checked, to replace PatientID/IssuerOfPatientID with the local IPP
    import_replace_patient_id: bool = True
    # A RIS-like test form at GET /drimbox/consumer/context that posts the appel contextuel (demos and tests)
    launch_page: bool = False
    retrieval_threads: int = 2  # exams retrieved at the same time (each moves its series one after the other)
    # CA bundle verifying source boxes' server certificates (the DN pre-flight); empty: Dmp.CaBundle. Keep it
    # the same as Orthanc's HttpsCACertificates, which its DICOMweb client uses for the same hosts.
    source_ca_bundle: str = ""

    def validate(self, path: str) -> None:
        if self.context_minutes <= 0:
            raise SettingsError(f"{path}.ContextMinutes must be > 0")
        if self.import_aet and not (0 < self.import_port < 65536 and self.import_host and len(self.import_aet) <= 16):
            raise SettingsError(f"{path}.ImportAet (at most 16 characters), ImportHost and ImportPort must name a"
                                " DICOM peer")
        if self.purge_interval_seconds <= 0:
            raise SettingsError(f"{path}.PurgeIntervalSeconds must be > 0")
        if self.cache_hours <= 0 or self.retrieval_threads < 1:
            raise SettingsError(f"{path}.CacheHours must be > 0 and {path}.RetrievalThreads >= 1")
        if len(self.statistics_delimiter) != 1:
            raise SettingsError(f"{path}.StatisticsDelimiter must be one character, got {self.statistics_delimiter!r}")
