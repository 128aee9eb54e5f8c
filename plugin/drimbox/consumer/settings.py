"""Settings of the consumer role. Owned by the consumer package."""

from __future__ import annotations

from dataclasses import dataclass

from drimbox.util.setting import SettingsError, setting


@dataclass(frozen=True)
class ConsumerSettings:
    enabled: bool = setting(True, "the consumer role (appel contextuel, DMP history, retrieval from peers)")
    context_minutes: int = setting(120, "lifetime of a working context opened by an appel contextuel")
    show_ins_on_demand: bool = setting(True, "INS number and OID behind a button in the patient header; false "
                                             "hides them")
    statistics_delimiter: str = setting(";", "delimiter of the national statistics CSV")
    cache_hours: float = setting(72.0, "how long a retrieved foreign study stays in the local Orthanc unless "
                                       "imported")
    purge_interval_seconds: float = setting(300.0, "how often cached foreign studies past CacheHours and expired "
                                                   "contexts are removed")
    import_aet: str = setting("", '"Import into my PACS": AE title of the local PACS receiving imported studies '
                                  "by C-STORE; empty: the study is only kept in the box")
    import_host: str = setting("127.0.0.1", "its host")
    import_port: int = setting(104, "its DICOM port")
    import_replace_patient_id: bool = setting(True, "the import form's box \"replace PatientID/IssuerOfPatientID "
                                                    "with the local IPP\" starts checked")
    launch_page: bool = setting(False, "a RIS-like test form at GET /drimbox/consumer/context that posts the "
                                       "appel contextuel (demos and tests)")
    retrieval_threads: int = setting(2, "exams retrieved at the same time (each moves its series one after the "
                                        "other)")
    # Orthanc's DICOMweb client uses HttpsCACertificates for the same hosts: keep both equal.
    source_ca_bundle: str = setting("", "CA bundle verifying source boxes' server certificates for the DN "
                                        "pre-flight; empty: Dmp.CaBundle")

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
