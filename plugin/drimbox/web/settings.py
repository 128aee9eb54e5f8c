"""Settings of the viewer host (OHIF, report links, patient access). Owned by the web package."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ViewerSettings:
    ohif_dir: str = ""  # the OHIF dist/ served at the root of the viewer host
    # Template of the link printed in the report.
    link_template: str = "{viewer}/drimbox/open?study={study_uid}&accession={accession}&report={report_id}"
    patient_token_keys: str = ""  # PEM/JWKS file of keys verifying patient access tokens
    session_minutes: int = 30
