"""The ``DRIMbox`` section of Orthanc's configuration, typed and validated at start-up.

Each concern owns its own settings class (``drimbox.<package>.settings``); this module composes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from drimbox.config.edge import DicomSettings, EdgeSettings
from drimbox.config.fields import SettingsError, read_section
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
    # "production" (written by drimbox install): refuse simulators, the demo whitelist and the test PKI.
    deployment: str = "demo"
    identity: IdentitySettings = field(default_factory=IdentitySettings, metadata={"section": IdentitySettings})
    store: str = ""  # sqlite:///abs/path.db or postgresql://...; empty = <data dir>/drimbox.db
    data_dir: str = ""
    orthanc_url: str = "http://127.0.0.1:8042"  # loopback REST base used by worker threads
    hl7: Hl7Settings = field(default_factory=Hl7Settings, metadata={"section": Hl7Settings})
    publication: PublicationSettings = field(default_factory=PublicationSettings,
                                             metadata={"section": PublicationSettings})
    dmp: DmpSettings = field(default_factory=DmpSettings, metadata={"section": DmpSettings})
    psc: PscSettings = field(default_factory=PscSettings, metadata={"section": PscSettings})
    whitelist: WhitelistSettings = field(default_factory=WhitelistSettings, metadata={"section": WhitelistSettings})
    peer_access: PeerAccessSettings = field(default_factory=PeerAccessSettings,
                                            metadata={"section": PeerAccessSettings})
    viewer: ViewerSettings = field(default_factory=ViewerSettings, metadata={"section": ViewerSettings})
    edge: EdgeSettings = field(default_factory=EdgeSettings, metadata={"section": EdgeSettings})
    dicom: DicomSettings = field(default_factory=DicomSettings, metadata={"section": DicomSettings})
    operator: OperatorSettings = field(default_factory=OperatorSettings, metadata={"section": OperatorSettings})
    consumer: ConsumerSettings = field(default_factory=ConsumerSettings, metadata={"section": ConsumerSettings})

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
