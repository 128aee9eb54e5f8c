"""Settings that belong to the box as a whole rather than to one package."""

from __future__ import annotations

from dataclasses import dataclass

from drimbox.config.fields import SettingsError, setting


@dataclass(frozen=True)
class IdentitySettings:
    """Who this box is on the DRIM-M network."""

    oid_root: str = setting("1.2.826.0.1.3680043.8.498.77", "root of every UID the box creates (KOS, "
                                                            "SubmissionSet); a demo root: set your registered OID")
    public_db_url: str = setting("https://localhost:8443",
                                 "public base URL of the db host, where peers retrieve images")
    wado_rs_path: str = setting("/wado-rs", "path of the WADO-RS base on the db host; KOS Retrieve URLs are "
                                            "PublicDbUrl + this")
    public_viewer_url: str = setting("https://localhost:8444",
                                     "public base URL of the vi host (viewer, consumer pages, PSC callback)")
    institution_name: str = setting("DRIMbox demo", "the structure's name (the manifest's InstitutionName)")

    def validate(self, path: str) -> None:
        root = self.oid_root
        if not root or any(not part.isdigit() for part in root.split(".")) or len(root) > 40:
            raise SettingsError(f"{path}.OidRoot must be a dotted numeric OID of at most 40 characters, got {root!r}")
        for key, url in (("PublicDbUrl", self.public_db_url), ("PublicViewerUrl", self.public_viewer_url)):
            if not url.startswith(("https://", "http://")):
                raise SettingsError(f"{path}.{key} must be an absolute http(s) URL, got {url!r}")
        if not self.wado_rs_path.startswith("/"):
            raise SettingsError(f"{path}.WadoRsPath must start with '/', got {self.wado_rs_path!r}")

    @property
    def wado_rs_base(self) -> str:
        return self.public_db_url.rstrip("/") + self.wado_rs_path.rstrip("/")


@dataclass(frozen=True)
class Hl7Settings:
    enabled: bool = setting(True, "listen for HL7 v2 reports over MLLP")
    host: str = setting("127.0.0.1", "address the MLLP listener binds to")
    port: int = setting(2575, "TCP port of the MLLP listener (0 = any free port)")
    max_message_bytes: int = setting(32 * 1024 * 1024, "largest message accepted (a CDA with its PDF is 100 kB - "
                                                       "5 MB); past it: AR and close")
    frame_deadline_seconds: float = setting(30.0, "a frame (or bytes outside any frame) must complete within "
                                                  "this many seconds of its first byte")
    idle_timeout_seconds: float = setting(60.0, "a connection with nothing in progress is closed after this "
                                                "silence (the RIS reconnects)")
    max_connections: int = setting(64, "open MLLP connections in all")
    max_connections_per_source: int = setting(8, "open MLLP connections from one address (one source cannot "
                                                 "lock the RIS out)")
    message_store_quota_bytes: int = setting(4 * 1024 * 1024 * 1024, "stored raw messages past this total: new "
                                                                     "ones get AR; 0 = no limit")
    min_free_disk_bytes: int = setting(1024 * 1024 * 1024, "free space that must remain on the data disk after "
                                                           "storing a message, else AR; 0 = no check")

    def validate(self, path: str) -> None:
        if not 0 <= self.port <= 65535:
            raise SettingsError(f"{path}.Port must be a TCP port (0-65535, 0 = any free port), got {self.port}")
        for key, value in (("MaxMessageBytes", self.max_message_bytes), ("MaxConnections", self.max_connections),
                           ("MaxConnectionsPerSource", self.max_connections_per_source)):
            if value < 1:
                raise SettingsError(f"{path}.{key} must be at least 1, got {value}")
        for key, seconds in (("FrameDeadlineSeconds", self.frame_deadline_seconds),
                             ("IdleTimeoutSeconds", self.idle_timeout_seconds)):
            if seconds <= 0:
                raise SettingsError(f"{path}.{key} must be a positive number of seconds, got {seconds}")
        if self.max_connections_per_source > self.max_connections:
            raise SettingsError(f"{path}.MaxConnectionsPerSource ({self.max_connections_per_source}) cannot exceed "
                                f"{path}.MaxConnections ({self.max_connections})")
        for key, value in (("MessageStoreQuotaBytes", self.message_store_quota_bytes),
                           ("MinFreeDiskBytes", self.min_free_disk_bytes)):
            if value < 0:
                raise SettingsError(f"{path}.{key} must be 0 (no limit) or a number of bytes, got {value}")


@dataclass(frozen=True)
class PublicationSettings:
    report_wait_for_study_seconds: int = setting(24 * 3600, "how long a report waits for its images before the "
                                                            "operator is told they never came")
    reject_reports_for_unknown_studies: bool = setting(False, "answer AE instead of AA with a warning when a "
                                                              "report names a study not (yet) in the PACS")
    worker_threads: int = setting(2, "threads building manifests")
    changes_poll_seconds: float = setting(5.0, "poll period of the persisted /changes cursor (the stable-study "
                                               "event alone is not durable)")
    sweep_seconds: float = setting(300.0, "period of the sweep that looks again at every study durably marked "
                                          "pending (and reports waiting for images): with several nodes, how "
                                          "soon a surviving node takes over what a dead node had noted")
    study_quiet_seconds: float = setting(0.0, "several Orthanc on one index: a study counts as stable only once "
                                              "its shared LastUpdate is this many seconds old too (each node "
                                              "knows only its own unstable studies); 0: Orthanc's IsStable alone")
