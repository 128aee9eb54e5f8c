"""Settings of the viewer host (OHIF, report links, patient access). Owned by the web package.

The report's link (``LinkTemplate``) is what the RIS prints in the report. Placeholders, each URL-encoded:
``{viewer}`` (Identity.PublicViewerUrl, not encoded), ``{study_uid}``, ``{accession}``, ``{report_id}``.
A link for a patient is the same link with ``&token=<signed access token>`` appended.

Patient access tokens are JWTs (RS256/ES256...) verified with the keys of ``PatientTokenKeys`` (a PEM file of
public keys or certificates, or a JWKS JSON file): that is where the national patient space's keys plug in.
``LocalPatientLinks`` lets the box issue such tokens itself (its own key, kept in its store) for tests and
demos; a production box sets it to false and trusts the national keys only.
"""

from __future__ import annotations

from dataclasses import dataclass

from drimbox.util.setting import setting

DEFAULT_LINK_TEMPLATE = "{viewer}/drimbox/open?study={study_uid}&accession={accession}&report={report_id}"
LINK_PLACEHOLDERS = ("viewer", "study_uid", "accession", "report_id")


@dataclass(frozen=True)
class ViewerSettings:
    ohif_dir: str = setting("", "the OHIF dist/ served at the root of the viewer host")
    link_template: str = setting(DEFAULT_LINK_TEMPLATE, "the link printed in the report; placeholders {viewer}, "
                                                        "{study_uid}, {accession}, {report_id}")
    patient_token_keys: str = setting("", "PEM or JWKS file of the keys verifying patient access tokens")
    patient_token_issuer: str = setting("", 'expected "iss" of patient tokens; empty: any issuer whose key is '
                                            "trusted")
    patient_token_audience: str = setting("", 'expected "aud" of patient tokens; empty: Identity.PublicViewerUrl')
    local_patient_links: bool = setting(True, "the box signs patient links itself (drimbox link --patient) and "
                                              "trusts its key: tests and demos; false in production")
    patient_link_hours: float = setting(72.0, "lifetime of the patient links the box issues")
    clock_skew_seconds: float = setting(60.0, "tolerated clock difference when checking patient tokens")
    session_minutes: int = setting(30, "lifetime of a viewer session (a cookie scoped to one study)")
    key_images_first: bool = setting(True, "open OHIF on the first key image when the study holds a key image "
                                           "note")

    def validate(self, path: str) -> None:
        from drimbox.config.fields import SettingsError

        template = self.link_template
        if "{study_uid}" not in template:
            raise SettingsError(f"{path}.LinkTemplate must contain {{study_uid}}, got {template!r}")
        try:
            template.format(**{name: "x" for name in LINK_PLACEHOLDERS})
        except (KeyError, IndexError, ValueError) as error:
            raise SettingsError(f"{path}.LinkTemplate: unknown or malformed placeholder ({error}); "
                                f"known: {', '.join('{' + n + '}' for n in LINK_PLACEHOLDERS)}") from error
        if self.session_minutes <= 0:
            raise SettingsError(f"{path}.SessionMinutes must be > 0")
        if self.patient_link_hours <= 0:
            raise SettingsError(f"{path}.PatientLinkHours must be > 0")
