"""Settings of the box's edges: the proof that a request came through nginx, and who may send DICOM."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drimbox.config.fields import SettingsError, setting

MIN_PROXY_SECRET_CHARS = 32


@dataclass(frozen=True)
class EdgeSettings:
    # Orthanc's port listens on every interface: without the secret no request naming an nginx entry is believed.
    proxy_secret_file: str = setting("", "file holding the secret nginx sets on every request it proxies "
                                         "(X-Drimbox-Proxy); empty: every entry request is refused")
    admin_max_body_mb: int = setting(512, "largest request body on the admin entry, in MB (STOW-RS, an uploaded "
                                          "study); db and vi take a few kB (413 past it)")
    peer_access_log: str = setting("", "nginx's log of the peers' WADO-RS answers, read for the Prometheus "
                                       "figures; empty = none")

    def validate(self, path: str) -> None:
        if self.admin_max_body_mb < 1:
            raise SettingsError(f"{path}.AdminMaxBodyMb must be at least 1, got {self.admin_max_body_mb}")

    def proxy_secret(self) -> str:
        """The secret, or "" when none is configured (then every entry request is refused)."""
        if not self.proxy_secret_file:
            return ""
        try:
            secret = Path(self.proxy_secret_file).read_text().strip()
        except OSError as error:
            raise SettingsError(f"DRIMbox.Edge.ProxySecretFile cannot be read ({error.strerror}): "
                                f"{self.proxy_secret_file}") from error
        if len(secret) < MIN_PROXY_SECRET_CHARS:
            raise SettingsError(f"DRIMbox.Edge.ProxySecretFile must hold at least {MIN_PROXY_SECRET_CHARS} "
                                f"characters: {self.proxy_secret_file}")
        return secret


@dataclass(frozen=True)
class DicomSettings:
    accept_any_modality: bool = setting(False, "open mode: any calling AE may C-ECHO and C-STORE; off: only "
                                               "the Modalities below")
    check_modality_host: bool = setting(True, "an association must come from its modality's declared host "
                                              "(Orthanc's DicomCheckModalityHost)")
    modalities: dict[str, Any] = setting(factory=dict, doc='{"name": {"AET": ..., "Host": ..., "Port": ...}}: the '
                                                           'only callers allowed to C-ECHO and C-STORE')

    def validate(self, path: str) -> None:
        for name, modality in self.modalities.items():
            where = f"{path}.Modalities.{name}"
            if not isinstance(modality, dict) or set(modality) - {"AET", "Host", "Port"}:
                raise SettingsError(f"{where} must be an object with AET, Host and Port")
            aet, host, port = modality.get("AET"), modality.get("Host"), modality.get("Port")
            if not isinstance(aet, str) or not 0 < len(aet) <= 16 or aet != aet.strip():
                raise SettingsError(f"{where}.AET must be an AE title of 1 to 16 characters, got {aet!r}")
            if not isinstance(host, str) or not host:
                raise SettingsError(f"{where}.Host must be a host name or address, got {host!r}")
            if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
                raise SettingsError(f"{where}.Port must be a TCP port, got {port!r}")

    def orthanc_options(self) -> dict[str, Any]:
        """Orthanc 1.10's own keys that enforce these settings (the launcher writes them)."""
        allowed = {"AllowEcho": True, "AllowStore": True, "AllowFind": False, "AllowFindWorklist": False,
                   "AllowGet": False, "AllowMove": False, "AllowStorageCommitment": False}
        return {
            "DicomAlwaysAllowEcho": self.accept_any_modality,
            "DicomAlwaysAllowStore": self.accept_any_modality,
            "DicomCheckCalledAet": True,
            "DicomCheckModalityHost": self.check_modality_host,
            "DicomModalities": {name: {"AET": m["AET"], "Host": m["Host"], "Port": m["Port"], **allowed}
                                for name, m in self.modalities.items()},
        }

    def check_orthanc(self, configuration: dict[str, Any]) -> None:
        """Refuse an Orthanc configuration that accepts more DICOM than these settings say.

        Orthanc's defaults accept C-ECHO and C-STORE from anyone, so a missing key is an error too.
        """
        if self.accept_any_modality:
            return
        expected = self.orthanc_options()
        for key in ("DicomAlwaysAllowEcho", "DicomAlwaysAllowStore", "DicomCheckCalledAet", "DicomCheckModalityHost"):
            if configuration.get(key) is not expected[key]:
                raise SettingsError(
                    f"Orthanc's {key} must be {str(expected[key]).lower()} (DRIMbox.Dicom.AcceptAnyModality is false), "
                    f"got {configuration.get(key)!r}: set it, or let the launcher generate Orthanc's configuration")
