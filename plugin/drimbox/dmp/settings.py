"""Settings of the DMP (XDS.b) client. Owned by the dmp package."""

from __future__ import annotations

from dataclasses import dataclass

from drimbox.config.fields import SettingsError

AUTH_MODES = ("DIRECTE", "INDIRECTE", "INDIRECTE_RENFORCEE", "AIR_PS", "AIR_PAT")


@dataclass(frozen=True)
class DmpSettings:
    enabled: bool = True
    # Base URL: <base>/registry, <base>/repository, <base>/patients, <base>/habilitations.
    base_url: str = "https://localhost:8445/dmp"
    client_cert: str = ""  # PEM or PKCS#12 file (organisation AUTH_CLI certificate)
    client_key: str = ""  # PEM key file (empty when client_cert is PKCS#12 or holds the key)
    client_key_password_file: str = ""
    ca_bundle: str = ""  # CA bundle verifying the DMP's server certificate
    signing_cert: str = ""  # structure signing certificate (VIHF, XAdES)
    signing_key: str = ""
    signing_key_password_file: str = ""
    timeout_seconds: float = 30.0
    # Largest answer read from the DMP (SOAP or MTOM); a bigger one is refused as DmpUnavailable.
    max_answer_mb: int = 32
    # Structure and software identity (VIHF attributes, XDS author).
    lps_id: str = "DRIMBOX-ORTHANC"
    lps_name: str = "DRIMbox for Orthanc"
    lps_version: str = "0.1.0"
    # Given by the DMP at homologation; the VIHF must carry one. The default marks a non-homologated install.
    lps_homologation_id: str = "DRIMBOX-NON-HOMOLOGUE"
    content_type_code: str = "04"  # SubmissionSet contentTypeCode (value set 1.2.250.1.213.2.2)
    content_type_system: str = "1.2.250.1.213.2.2"
    event_code_modality_system: str = "1.2.250.1.213.1.1.5.618"
    event_code_region_system: str = "1.2.250.1.213.1.1.5.695"
    author_is_device: bool = True  # author = the DRIMbox as a device + structure; false = the report's author
    # VIHF: how the structure authenticated the professional, and the professional's role codes when the
    # report does not carry them (profession 1.2.250.1.71.1.2.7, specialty 1.2.250.1.71.4.2.5).
    auth_mode: str = "INDIRECTE_RENFORCEE"
    profession_code: str = "10"
    profession_display: str = "Médecin"
    specialty_code: str = "SM44"
    specialty_display: str = "Radio-diagnostic"
    retry_initial_seconds: float = 5.0
    retry_max_seconds: float = 3600.0

    def validate(self, path: str) -> None:
        if self.auth_mode not in AUTH_MODES:
            raise SettingsError(f"{path}.AuthMode must be one of {', '.join(AUTH_MODES)}, got {self.auth_mode!r}")
        if not self.base_url.startswith(("https://", "http://")):
            raise SettingsError(f"{path}.BaseUrl must be an absolute http(s) URL, got {self.base_url!r}")
        if self.timeout_seconds <= 0:
            raise SettingsError(f"{path}.TimeoutSeconds must be positive")
        if self.max_answer_mb < 1:
            raise SettingsError(f"{path}.MaxAnswerMb must be at least 1, got {self.max_answer_mb}")
