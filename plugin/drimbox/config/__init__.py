"""The ``DRIMbox`` section of Orthanc's configuration, typed and validated at start-up.

Each concern owns its own settings class (``drimbox.<package>.settings``); this module composes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from drimbox.audit.settings import AuditSettings
from drimbox.config.edge import DicomSettings, EdgeSettings
from drimbox.config.fields import SettingsError, read_section, setting
from drimbox.config.sections import (
    Hl7Settings,
    IdentitySettings,
    PublicationSettings,
)
from drimbox.consumer.settings import ConsumerSettings
from drimbox.dmp.settings import DmpSettings
from drimbox.psc.settings import PscSettings
from drimbox.trust.settings import PeerAccessSettings, WhitelistSettings
from drimbox.web.operator_settings import OperatorSettings
from drimbox.web.settings import ViewerSettings

__all__ = ["Settings", "SettingsError", "check_deployment", "load_settings"]


@dataclass(frozen=True)
class Settings:
    deployment: str = setting("demo", '"production" (written by drimbox install) refuses simulators, the demo '
                                      'whitelist and the test PKI; "demo" allows them')
    identity: IdentitySettings = setting(factory=IdentitySettings, section=IdentitySettings,
                                         doc="who this box is on the DRIM-M network")
    store: str = setting("", "the store: `sqlite:///<absolute path>` or `postgresql://...`; empty: "
                                      "`<DataDir>/drimbox.db`")
    data_dir: str = setting("", "the box's own files (store, indicators, audit archive); the launcher sets it")
    orthanc_url: str = setting("http://127.0.0.1:8042", "Orthanc's loopback REST base, used by the worker threads")
    hl7: Hl7Settings = setting(factory=Hl7Settings, section=Hl7Settings,
                               doc="the MLLP listener receiving reports from the RIS")
    publication: PublicationSettings = setting(factory=PublicationSettings, section=PublicationSettings,
                                               doc="from report and stable study to a published manifest")
    dmp: DmpSettings = setting(factory=DmpSettings, section=DmpSettings, doc="the DMP (XDS.b) client")
    psc: PscSettings = setting(factory=PscSettings, section=PscSettings,
                               doc="the Pro Santé Connect (OpenID Connect) client")
    whitelist: WhitelistSettings = setting(factory=WhitelistSettings, section=WhitelistSettings,
                                           doc="the signed national whitelist of trusted DRIMboxes")
    peer_access: PeerAccessSettings = setting(factory=PeerAccessSettings, section=PeerAccessSettings,
                                              doc="what a peer DRIMbox needs to retrieve images from the db entry")
    viewer: ViewerSettings = setting(factory=ViewerSettings, section=ViewerSettings,
                                     doc="the viewer host: OHIF, report links, patient links")
    edge: EdgeSettings = setting(factory=EdgeSettings, section=EdgeSettings,
                                 doc="nginx in front: its proof secret, body limits, peer access log")
    dicom: DicomSettings = setting(factory=DicomSettings, section=DicomSettings,
                                   doc="who may send DICOM to the box")
    operator: OperatorSettings = setting(factory=OperatorSettings, section=OperatorSettings,
                                         doc="the operator (admin) entry: users, sessions, failed-login locks")
    consumer: ConsumerSettings = setting(factory=ConsumerSettings, section=ConsumerSettings,
                                         doc="the consumer role: appel contextuel, retrieval, cache, import")
    audit: AuditSettings = setting(factory=AuditSettings, section=AuditSettings,
                                   doc="the audit trail: how long it stays in the store, where it is archived")

    def validate(self, path: str) -> None:
        from drimbox.config.production import DEPLOYMENTS

        if self.deployment not in DEPLOYMENTS:
            raise SettingsError(f"{path}.Deployment must be one of {', '.join(DEPLOYMENTS)}, got {self.deployment!r}")

    @property
    def store_url(self) -> str:
        if self.store:
            return self.store
        if not self.data_dir:
            raise SettingsError("DRIMbox.Store or DRIMbox.DataDir must be set")
        return f"sqlite:///{self.data_dir.rstrip('/')}/drimbox.db"


def load_settings(orthanc_configuration: dict[str, Any]) -> Settings:
    """Read the ``DRIMbox`` section of the merged Orthanc configuration."""
    return read_section(Settings, orthanc_configuration.get("DRIMbox") or {}, "DRIMbox")


def check_deployment(settings: Settings, orthanc_configuration: dict[str, Any]) -> None:
    """What the section alone cannot tell: Orthanc's own keys must not accept more DICOM than the section
    allows, the nginx proof secret must be readable, and a production box keeps nothing of the demo."""
    settings.dicom.check_orthanc(orthanc_configuration)
    settings.edge.proxy_secret()
    if settings.deployment == "production":
        from drimbox.config.production import production_problems

        problems = production_problems(settings)
        if problems:
            raise SettingsError("not ready for production:\n  - " + "\n  - ".join(problems))
