"""Settings of the DMP (XDS.b) client. Owned by the dmp package."""

from __future__ import annotations

from dataclasses import dataclass

from drimbox.util.setting import SettingsError, setting

AUTH_MODES = ("DIRECTE", "INDIRECTE", "INDIRECTE_RENFORCEE", "AIR_PS", "AIR_PAT")


@dataclass(frozen=True)
class DmpSettings:
    enabled: bool = setting(True, "publish manifests to the DMP (false: the box builds them and stops there)")
    base_url: str = setting("https://localhost:8445/dmp", "base URL: `<base>/registry`, `/repository`, "
                                                          "`/patients`, `/habilitations` (default: the simulator)")
    client_cert: str = setting("", "TLS client certificate: the organisation's IGC-Santé AUTH_CLI, PEM or PKCS#12")
    client_key: str = setting("", "its PEM key (empty when ClientCert is PKCS#12 or holds the key)")
    client_key_password_file: str = setting("", "file holding the client key's (or PKCS#12's) password")
    ca_bundle: str = setting("", "CA bundle verifying the DMP's server certificate")
    signing_cert: str = setting("", "the structure's signing certificate (VIHF assertion, XAdES), PEM or PKCS#12")
    signing_key: str = setting("", "its PEM key (empty when SigningCert is PKCS#12 or holds the key)")
    signing_key_password_file: str = setting("", "file holding the signing key's (or PKCS#12's) password")
    timeout_seconds: float = setting(30.0, "bound of the connection, of every read and of a whole answer's body")
    max_answer_mb: int = setting(32, "largest answer read from the DMP (SOAP or MTOM); a bigger one is a "
                                     "retryable error")
    lps_id: str = setting("DRIMBOX-ORTHANC", "software id (VIHF LPS_ID)")
    lps_name: str = setting("DRIMbox for Orthanc", "software name (VIHF LPS_Nom)")
    lps_version: str = setting("0.1.0", "software version (VIHF LPS_Version)")
    lps_homologation_id: str = setting("DRIMBOX-NON-HOMOLOGUE", "DMP homologation id (VIHF "
                                                                 "LPS_ID_HOMOLOGATION_DMP); the default marks a "
                                                                 "non-homologated install")
    content_type_code: str = setting("04", "SubmissionSet contentTypeCode (value set 1.2.250.1.213.2.2)")
    content_type_system: str = setting("1.2.250.1.213.2.2", "its coding system")
    event_code_modality_system: str = setting("1.2.250.1.213.1.1.5.618", "coding system of the modality "
                                                                         "eventCodeList entries")
    event_code_region_system: str = setting("1.2.250.1.213.1.1.5.695", "coding system of the anatomical region "
                                                                       "eventCodeList entry")
    author_is_device: bool = setting(True, "XDS author: the DRIMbox as a device plus the structure; false: the "
                                           "report's author")
    auth_mode: str = setting("INDIRECTE_RENFORCEE", "VIHF Authentification_Mode: " + " | ".join(AUTH_MODES))
    profession_code: str = setting("10", "professional's profession code (1.2.250.1.71.1.2.7) when the report "
                                         "has none")
    profession_display: str = setting("Médecin", "its display name")
    specialty_code: str = setting("SM44", "professional's specialty code (1.2.250.1.71.4.2.5) when the report "
                                          "has none")
    specialty_display: str = setting("Radio-diagnostic", "its display name")
    retry_initial_seconds: float = setting(5.0, "first delay before retrying a failed publication (then doubled)")
    retry_max_seconds: float = setting(3600.0, "longest delay between two attempts")

    def validate(self, path: str) -> None:
        if self.auth_mode not in AUTH_MODES:
            raise SettingsError(f"{path}.AuthMode must be one of {', '.join(AUTH_MODES)}, got {self.auth_mode!r}")
        if not self.base_url.startswith(("https://", "http://")):
            raise SettingsError(f"{path}.BaseUrl must be an absolute http(s) URL, got {self.base_url!r}")
        if self.timeout_seconds <= 0:
            raise SettingsError(f"{path}.TimeoutSeconds must be positive")
        if self.max_answer_mb < 1:
            raise SettingsError(f"{path}.MaxAnswerMb must be at least 1, got {self.max_answer_mb}")
