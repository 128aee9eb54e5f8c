"""Settings that belong to the box as a whole rather than to one package."""

from __future__ import annotations

from dataclasses import dataclass

from drimbox.config.fields import SettingsError


@dataclass(frozen=True)
class IdentitySettings:
    """Who this box is on the DRIM-M network."""

    # Root of every UID this box creates (KOS SOP/series, SubmissionSet uniqueId/sourceId).
    # The default is a demo root; a real site sets its own registered OID.
    oid_root: str = "1.2.826.0.1.3680043.8.498.77"
    # Public base URL of the `db` host (peers retrieve images from here).
    public_db_url: str = "https://localhost:8443"
    # Path of the WADO-RS base on the `db` host; KOS Retrieve URLs are public_db_url + this.
    wado_rs_path: str = "/wado-rs"
    # Public base URL of the `vi` host (viewer, consumer pages, PSC callback).
    public_viewer_url: str = "https://localhost:8444"
    institution_name: str = "DRIMbox demo"

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
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 2575
    # Largest message accepted over MLLP (a CDA with its PDF is typically 100 kB - 5 MB): past it, AR and close.
    max_message_bytes: int = 32 * 1024 * 1024
    # A frame (or a run of bytes outside any frame) must be complete within this many seconds of its first byte.
    frame_deadline_seconds: float = 30.0
    # A connection with no frame in progress is closed after this many seconds of silence (the RIS reconnects).
    idle_timeout_seconds: float = 60.0
    # Open connections: in all, and from one source address (so one source cannot lock the RIS out).
    max_connections: int = 64
    max_connections_per_source: int = 8
    # Stored inbound messages (raw bytes, kept for the operator): past this total, new messages get AR. 0 = no limit.
    message_store_quota_bytes: int = 4 * 1024 * 1024 * 1024
    # Free space that must remain on the data directory's disk after storing a message, else AR. 0 = no check.
    min_free_disk_bytes: int = 1024 * 1024 * 1024

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
    # How long a report may wait for its images before the operator is told they never came.
    report_wait_for_study_seconds: int = 24 * 3600
    # Answer AE instead of AA(+warning) when a report names a study not (yet) in the PACS.
    reject_reports_for_unknown_studies: bool = False
    worker_threads: int = 2
    # Poll period of the /changes cursor (the stable-study event alone is not durable).
    changes_poll_seconds: float = 5.0
    # Period of the sweep that looks again at every study durably marked pending (and reports waiting for images):
    # with several nodes, how soon a surviving node takes over what a dead node had noted.
    sweep_seconds: float = 300.0
    # Several Orthanc on one index: each knows only the studies it received itself as unstable, so a study
    # counts as stable only once its LastUpdate (shared) is this many seconds old too; 0: Orthanc's IsStable alone.
    study_quiet_seconds: float = 0.0
