"""Render a lot as the full SOAP envelope (VIHF included) without sending it: for review and validation."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from lxml import etree

from drimbox.config.sections import IdentitySettings
from drimbox.dmp import hl7dt, soap, transactions, xds_ids
from drimbox.dmp.client import Actor
from drimbox.dmp.lot import PreparedLot, build_lot
from drimbox.dmp.settings import DmpSettings
from drimbox.dmp.signing import SigningMaterial
from drimbox.dmp.vihf import Software, build_vihf
from drimbox.reports.model import Code, Report


def render_envelope(lot: PreparedLot, report: Report, settings: DmpSettings, signing: SigningMaterial,
                    now: dt.datetime) -> etree._Element:
    actor = Actor.for_report(report)
    security = build_vihf(
        professional=actor.professional, organization=actor.organization,
        patient_cx=hl7dt.patient_cx_of(report.patient),
        software=Software(settings.lps_id, settings.lps_name, settings.lps_version, settings.lps_homologation_id),
        signing_key=signing.key, signing_cert=signing.cert, chain=signing.chain, now=now,
        auth_mode=settings.auth_mode,
        roles=(Code(settings.profession_code, xds_ids.SYSTEM_PROFESSION, settings.profession_display),
               Code(settings.specialty_code, xds_ids.SYSTEM_SPECIALTY, settings.specialty_display)),
    )
    body, _ = lot.provide_and_register(inline=True)
    url = transactions.endpoint(settings.base_url, xds_ids.ACTION_ITI41)
    return soap.envelope(xds_ids.ACTION_ITI41, url, body, security=security)


def render_lot(
    kos: bytes,
    report: Report,
    flags: Mapping[str, bool],
    settings: DmpSettings,
    identity: IdentitySettings,
    *,
    replaces_entry_uuid: str | None = None,
    now: dt.datetime | None = None,
    signing: SigningMaterial | None = None,
) -> bytes:
    """The ITI-41 SOAP envelope of the lot with its documents inline (base64), signed VIHF in wsse:Security.

    ``signing`` defaults to the configured signing certificate and key.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    signing = signing or SigningMaterial.load(settings.signing_cert, settings.signing_key,
                                              settings.signing_key_password_file)
    lot = build_lot(kos, report, flags, settings, identity, signing=signing, now=now,
                    replaces_entry_uuid=replaces_entry_uuid)
    return soap.serialize(render_envelope(lot, report, settings, signing, now))
