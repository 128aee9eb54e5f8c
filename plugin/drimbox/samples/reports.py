"""Synthetic CR-IMG reports and the HL7 v2 messages that carry them (tests, demos, vendors, benchmarks).

``make_oru(make_cda())`` gives a complete, valid ORU^R01 for the demo patient; every piece can be overridden.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from xml.sax.saxutils import escape, quoteattr

from drimbox.reports.flags import DEFAULT_FLAGS, FLAG_LABELS
from drimbox.reports.model import Code, Organization, PatientIdentity, Person, StudyOrder

TEST_INS_OID = "1.2.250.1.213.1.4.10"
DEMO_PATIENT = PatientIdentity(
    ins="279035121518989", ins_oid=TEST_INS_OID, ipp="IPP0001", ipp_issuer="1.2.250.1.999.1.1",
    family="PAT-TROIS", given="DOMINIQUE", sex="F", birth_date="19790328", birthplace="63220",
    used_family="PAT-TROIS", used_given="DOMINIQUE", identity_reliability=("VALI",),
)
DEMO_AUTHOR = Person(id_nat="801234560801", family="BIDEAULT", given="Jacques")
DEMO_ORGANIZATION = Organization(
    id="1012355550", name="Centre de radiologie Ambroise",
    sector=Code("AMBULATOIRE", "1.2.250.1.213.1.1.4.9", "Ambulatoire"),
    facility_type=Code("SA08", "1.2.250.1.71.4.2.4", "Cabinet de groupe"),
)
DEMO_ACT = Code("24727-0", "2.16.840.1.113883.6.1", "CT Head W contrast IV")
DEMO_CCAM = Code("ACQH004", "1.2.250.1.213.2.5", "Scanographie du crane avec injection")
DEMO_REGION = Code("774007", "2.16.840.1.113883.6.96", "structure de la tete et/ou du cou")
DEMO_ACCESSION_ISSUER = "1.2.250.1.999.1.2"
DEMO_ORDER_ISSUER = "1.2.250.1.999.1.3"

_MODALITY_NAMES = {"CT": "Tomodensitometrie", "MR": "Imagerie par resonance magnetique", "US": "Echographie",
                   "CR": "Radiographie numerisee", "DX": "Radiographie numerique", "MG": "Mammographie",
                   "PT": "Tomographie par emission de positons", "NM": "Medecine nucleaire"}


def new_uid() -> str:
    """A fresh UUID-derived UID (2.25 root, at most 64 characters)."""
    return f"2.25.{uuid.uuid4().int}"


def make_cda(
    *,
    report_id: str | None = None,
    patient: PatientIdentity = DEMO_PATIENT,
    studies: Sequence[StudyOrder] | None = None,
    author: Person = DEMO_AUTHOR,
    legal_authenticator: Person | None = None,
    organization: Organization = DEMO_ORGANIZATION,
    modalities: Sequence[str] = ("CT",),
    replaces_report_id: str | None = None,
    set_id: str | None = None,
    version: int = 1,
    act: Code = DEMO_ACT,
    ccam: Code | None = DEMO_CCAM,
    anatomic_region: Code | None = DEMO_REGION,
    title: str = "CR d'imagerie médicale - Scanner",
    effective_time: str | None = None,
    service_start: str | None = None,
    service_stop: str | None = None,
    confidentiality: str = "N",
    body_text: str = "Compte rendu de l'examen : aucune anomalie decelee.",
    study_id_style: str = "root",
) -> bytes:
    """A CR-IMG (CDA R2 level 1, PDF body) close to the CI-SIS example.

    ``report_id`` is "root" or "root^extension". ``studies`` default to one new study with an accession and an
    order. ``study_id_style="extension"`` writes ``<id root="<uid>" extension="studyInstanceUID"/>`` (a variant
    met in the field). Each study gets its own serviceEvent; orders are written in the same order as studies.
    """
    report_id = report_id or new_uid()
    if studies is None:
        studies = [StudyOrder(new_uid(), accession="ACC0001", accession_issuer=DEMO_ACCESSION_ISSUER,
                              order="ORD0001", order_issuer=DEMO_ORDER_ISSUER)]
    legal_authenticator = legal_authenticator or author
    now = datetime.now().strftime("%Y%m%d%H%M%S")
    effective_time = effective_time or now
    service_start = service_start or effective_time
    service_stop = service_stop or effective_time

    def ii(value: str) -> str:
        root, _, extension = value.partition("^")
        return f"root={quoteattr(root)}" + (f" extension={quoteattr(extension)}" if extension else "")

    def code(tag: str, c: Code, inner: str = "") -> str:
        attrs = f"code={quoteattr(c.code)} codeSystem={quoteattr(c.system)}"
        if c.display:
            attrs += f" displayName={quoteattr(c.display)}"
        return f"<{tag} {attrs}>{inner}</{tag}>" if inner else f"<{tag} {attrs}/>"

    def person(p: Person) -> str:
        return (f"<id root={quoteattr(p.id_root)} extension={quoteattr(p.id_nat)}/>"
                f"<assignedPerson><name><given>{escape(p.given)}</given><family>{escape(p.family)}</family>"
                f"</name></assignedPerson>")

    def org(o: Organization) -> str:
        sector = code("standardIndustryClassCode", o.sector) if o.sector else ""
        return (f"<representedOrganization><id root={quoteattr(o.id_root)} extension={quoteattr(o.id)}/>"
                f"<name>{escape(o.name)}</name>{sector}</representedOrganization>")

    patient_ids = ""
    if patient.ins:
        patient_ids += f"<id root={quoteattr(patient.ins_oid or TEST_INS_OID)} extension={quoteattr(patient.ins)}/>"
    if patient.ipp:
        patient_ids += (f"<id root={quoteattr(patient.ipp_issuer or '1.2.250.1.999.1.1')} "
                        f"extension={quoteattr(patient.ipp)}/>")
    used = ""
    if patient.used_family and patient.used_family != patient.family:
        used = (f"<family qualifier=\"CL\">{escape(patient.used_family)}</family>"
                f"<given qualifier=\"CL\">{escape(patient.used_given or patient.given)}</given>")
    birthplace = (f"<birthplace><place><addr><county>{escape(patient.birthplace)}</county></addr></place></birthplace>"
                  if patient.birthplace else "")

    orders = ""
    seen_orders: list[tuple] = []
    for item in studies:
        key = (item.order, item.order_issuer, item.accession, item.accession_issuer)
        if not (item.order or item.accession) or key in seen_orders:
            continue
        seen_orders.append(key)
        order_id = (f"<id root={quoteattr(item.order_issuer)} extension={quoteattr(item.order)}/>"
                    if item.order_issuer else f"<id root={quoteattr(item.order)}/>") if item.order else ""
        accession = (f"<ps3-20:accessionNumber root={quoteattr(item.accession_issuer)} "
                     f"extension={quoteattr(item.accession)}/>") if item.accession else ""
        orders += f"<inFulfillmentOf><order>{order_id}{accession}</order></inFulfillmentOf>"

    translations = code("translation", ccam) if ccam else ""
    for modality in modalities:
        translations += code("translation", Code(modality, "1.2.840.10008.2.16.4", _MODALITY_NAMES.get(modality, "")),
                             "<qualifier><name code=\"121139\" codeSystem=\"1.2.840.10008.2.16.4\" "
                             "displayName=\"Modalite d'imagerie\"/></qualifier>")
    if anatomic_region:
        translations += code("translation", anatomic_region)
    performer = (f"<performer typeCode=\"PRF\"><assignedEntity>{person(author)}{org(organization)}"
                 f"</assignedEntity></performer>")
    events = ""
    for study_uid in dict.fromkeys(item.study_uid for item in studies):
        study_id = (f"<id root={quoteattr(study_uid)} extension=\"studyInstanceUID\"/>"
                    if study_id_style == "extension" else f"<id root={quoteattr(study_uid)}/>")
        events += (f"<documentationOf><serviceEvent classCode=\"ACT\">{study_id}{code('code', act, translations)}"
                   f"<effectiveTime><low value=\"{service_start}\"/><high value=\"{service_stop}\"/></effectiveTime>"
                   f"{performer}</serviceEvent></documentationOf>")
    related = (f"<relatedDocument typeCode=\"RPLC\"><parentDocument><id {ii(replaces_report_id)}/></parentDocument>"
               f"</relatedDocument>") if replaces_report_id else ""
    facility = (f"<componentOf><encompassingEncounter><effectiveTime><low value=\"{service_start}\"/></effectiveTime>"
                f"<location><healthCareFacility>{code('code', organization.facility_type)}</healthCareFacility>"
                f"</location></encompassingEncounter></componentOf>") if organization.facility_type else ""
    pdf = make_pdf([title, f"Patient : {patient.family} {patient.given} ({patient.birth_date})",
                    f"Etude(s) : {', '.join(s.study_uid for s in studies)}", body_text,
                    f"Dr {legal_authenticator.given} {legal_authenticator.family}"])
    namespaces = ('xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
                  'xmlns:ps3-20="urn:dicom-org:ps3-20"')
    custodian = (f"<custodian><assignedCustodian><representedCustodianOrganization>"
                 f"<id root={quoteattr(organization.id_root)} extension={quoteattr(organization.id)}/>"
                 f"<name>{escape(organization.name)}</name>"
                 f"</representedCustodianOrganization></assignedCustodian></custodian>")
    legal = (f"<legalAuthenticator><time value=\"{effective_time}\"/><signatureCode code=\"S\"/>"
             f"<assignedEntity>{person(legal_authenticator)}{org(organization)}</assignedEntity></legalAuthenticator>")
    body = (f"<component><nonXMLBody><text mediaType=\"application/pdf\" representation=\"B64\">"
            f"{base64.b64encode(pdf).decode()}</text></nonXMLBody></component>")

    xml = f"""<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument {namespaces}>
  <realmCode code="FR"/>
  <typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>
  <templateId root="2.16.840.1.113883.2.8.2.1"/>
  <templateId root="1.2.250.1.213.1.1.1.1"/>
  <templateId root="1.3.6.1.4.1.19376.1.2.20"/>
  <id {ii(report_id)}/>
  <code code="18748-4" displayName="CR d'imagerie médicale" codeSystem="2.16.840.1.113883.6.1" codeSystemName="LOINC"/>
  <title>{escape(title)}</title>
  <effectiveTime value="{effective_time}"/>
  <confidentialityCode code={quoteattr(confidentiality)} codeSystem="2.16.840.1.113883.5.25"/>
  <languageCode code="fr-FR"/>
  <setId {ii(set_id or report_id)}/>
  <versionNumber value="{version}"/>
  <recordTarget><patientRole>{patient_ids}<patient classCode="PSN">
    <name><family qualifier="BR">{escape(patient.family)}</family><given>{escape(patient.given)}</given>{used}</name>
    <administrativeGenderCode code={quoteattr(patient.sex or "U")} codeSystem="2.16.840.1.113883.5.1"/>
    <birthTime value={quoteattr(patient.birth_date)}/>{birthplace}
  </patient></patientRole></recordTarget>
  <author><time value="{effective_time}"/><assignedAuthor>{person(author)}{org(organization)}</assignedAuthor></author>
  {custodian}
  {legal}
  {orders}
  {events}
  {related}
  {facility}
  {body}
</ClinicalDocument>
"""
    return xml.encode("utf-8")


def make_pdf(lines: Sequence[str]) -> bytes:
    """A one-page PDF showing ``lines`` (Helvetica, WinAnsi)."""
    def pdf_text(value: str) -> str:
        return value.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    stream = "BT /F1 11 Tf 50 780 Td 14 TL " + " ".join(f"({pdf_text(line)}) '" for line in lines) + " ET"
    stream_bytes = stream.encode("cp1252", errors="replace")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> "
        b"/Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length " + str(len(stream_bytes)).encode() + b" >>\nstream\n" + stream_bytes + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


# -- HL7 v2 ------------------------------------------------------------------------------------------------------

def _hl7_escape(value: str) -> str:
    return (value.replace("\\", "\\E\\").replace("|", "\\F\\").replace("^", "\\S\\").replace("&", "\\T\\")
            .replace("~", "\\R\\"))


def _msh(message_type: str, control_id: str | None, version: str) -> str:
    now = datetime.now().strftime("%Y%m%d%H%M%S")
    return (f"MSH|^~\\&|RIS_DEMO|CABINET_DEMO|DRIMBOX|DRIMBOX|{now}||{message_type}|"
            f"{control_id or uuid.uuid4().hex[:20]}|P|{version}|||||FRA|UNICODE UTF-8|||2.1^CISIS_CDA_HL7_V2")


def _pid(patient: PatientIdentity, ins_validated: bool = True) -> str:
    ids = []
    if patient.ipp:
        issuer = patient.ipp_issuer or ""
        ids.append(f"{_hl7_escape(patient.ipp)}^^^RIS_DEMO&{issuer}&ISO^PI")
    if patient.ins:
        ids.append(f"{_hl7_escape(patient.ins)}^^^ASIP-SANTE-INS-NIR&{patient.ins_oid or TEST_INS_OID}&ISO^INS")
    names = [f"{_hl7_escape(patient.family)}^{_hl7_escape(patient.given)}^{_hl7_escape(patient.given)}^^^^L"]
    if patient.used_family and patient.used_family != patient.family:
        names.append(f"{_hl7_escape(patient.used_family)}^{_hl7_escape(patient.used_given or patient.given)}^^^^^D")
    address = f"^^^^^^BDL^^{patient.birthplace}" if patient.birthplace else ""
    fields = [""] * 33
    fields[0] = "PID"
    fields[1] = "1"
    fields[3] = "~".join(ids)
    fields[5] = "~".join(names)
    fields[7] = patient.birth_date
    fields[8] = patient.sex
    fields[11] = address
    fields[32] = "VALI" if ins_validated else "PROV"
    return "|".join(fields)


def _prt(organization: Organization | None, structure_id: str | None) -> str:
    org = organization or DEMO_ORGANIZATION
    ident = org.id if structure_id is None else structure_id
    return (f"PRT||UC||SB^Send by^participation||||{_hl7_escape(org.name)}^^^^^ASIP-SANTE-ST&{org.id_root}&ISO"
            f"^IDNST^^^{_hl7_escape(ident)}")


def _flag_obx(start: int, flags: Mapping[str, bool] | None) -> list[str]:
    values = dict(DEFAULT_FLAGS)
    values.update(flags or {})
    return [f"OBX|{start + i}|CE|{name}^{FLAG_LABELS[name]}^MetaDMPMSS||"
            f"{'Y' if value else 'N'}^^expandedYes-NoIndicator||||||F"
            for i, (name, value) in enumerate(values.items())]


def _cda_facts(cda: bytes | None):
    """The parsed CDA (to default patient, sender and report id), or None when there is none or it is unusable."""
    if not cda:
        return None
    from drimbox.reports.cda import parse_cda
    from drimbox.reports.errors import ReportError

    try:
        report = parse_cda(cda)
    except ReportError:
        return None
    return report


def _cda_obx(cda: bytes, status: str) -> str:
    return (f"OBX|1|ED|18748-4^CR d'imagerie médicale^LN||^TEXT^XML^Base64^{base64.b64encode(cda).decode()}"
            f"||||||{status}")


def _viewer_obx(set_id: int, url: str) -> str:
    return (f"OBX|{set_id}|TX|URL_PARTIELLE_VIEWER^URL partielle d'acces a la visionneuse^TLR_OBSERVATION||"
            f"{base64.b64encode(url.encode()).decode()}||||||F")


def make_oru(
    cda: bytes | None = None,
    *,
    event: str = "publish",
    flags: Mapping[str, bool] | None = None,
    patient: PatientIdentity | None = None,
    control_id: str | None = None,
    report_id: str | None = None,
    organization: Organization | None = None,
    sending_structure: str | None = None,
    viewer_partial_url: str | None = None,
    ins_validated: bool = True,
    separator: str = "\r",
) -> bytes:
    """An ORU^R01 v2.5 carrying ``cda`` (a new demo CDA when None, except for a withdrawal).

    ``event``: publish (ORC NW, OBX-11 F), replace (ORC RO, OBX-11 C), withdraw (ORC CA, OBX-11 D). A withdrawal
    without CDA names the report in OBR-3 (``report_id``). Patient and sending structure default to the CDA's.
    """
    statuses = {"publish": ("NW", "F"), "replace": ("RO", "C"), "withdraw": ("CA", "D")}
    if event not in statuses:
        raise ValueError(f"event must be one of {', '.join(statuses)}")
    order_control, status = statuses[event]
    if cda is None and event != "withdraw":
        cda = make_cda()
    report = _cda_facts(cda)
    patient = patient or (report.patient if report else DEMO_PATIENT)
    organization = organization or (report.organization if report else DEMO_ORGANIZATION)
    report_id = report_id or (report.report_id if report else "")
    obr3 = ""
    if report_id:
        root, _, extension = report_id.partition("^")
        obr3 = f"{_hl7_escape(extension)}^^{root}^ISO" if extension else f"{_hl7_escape(root)}"
    now = datetime.now().strftime("%Y%m%d%H%M%S")
    segments = [
        _msh("ORU^R01^ORU_R01", control_id, "2.5"),
        _pid(patient, ins_validated),
        "PV1|1|O",
        f"ORC|{order_control}",
        f"OBR|1||{obr3}|18748-4^CR d'imagerie médicale^LN|||{now}",
    ]
    next_obx = 1
    if cda is not None:
        segments.append(_cda_obx(cda, status))
        next_obx = 2
    segments.append(_prt(organization, sending_structure))
    segments += _flag_obx(next_obx, flags)
    if viewer_partial_url:
        segments.append(_viewer_obx(next_obx + len(DEFAULT_FLAGS), viewer_partial_url))
    return (separator.join(segments) + separator).encode("utf-8")


def make_mdm(
    cda: bytes | None = None,
    *,
    trigger: str = "T02",
    flags: Mapping[str, bool] | None = None,
    patient: PatientIdentity | None = None,
    control_id: str | None = None,
    report_id: str | None = None,
    replaces_report_id: str | None = None,
    organization: Organization | None = None,
    sending_structure: str | None = None,
    viewer_partial_url: str | None = None,
    ins_validated: bool = True,
    separator: str = "\r",
) -> bytes:
    """An MDM v2.6: T02 new report, T10 replacement (TXA-13 = replaced id), T04 withdrawal (CDA optional)."""
    statuses = {"T02": "F", "T10": "C", "T04": "D"}
    if trigger not in statuses:
        raise ValueError(f"trigger must be one of {', '.join(statuses)}")
    if cda is None and trigger != "T04":
        cda = make_cda()
    report = _cda_facts(cda)
    patient = patient or (report.patient if report else DEMO_PATIENT)
    organization = organization or (report.organization if report else DEMO_ORGANIZATION)
    report_id = report_id or (report.report_id if report else "")
    replaces_report_id = replaces_report_id or (report.replaces_report_id if report else None)

    def ei(value: str | None) -> str:
        if not value:
            return ""
        root, _, extension = value.partition("^")
        return f"{_hl7_escape(extension)}^^{root}^ISO" if extension else _hl7_escape(root)

    now = datetime.now().strftime("%Y%m%d%H%M%S")
    txa = ["TXA", "1", "18748-4^CR d'imagerie médicale^LN", "TX", "", "", now, "", "", "", "", "",
           ei(report_id), ei(replaces_report_id), "", "", "", "AU"]
    segments = [
        _msh(f"MDM^{trigger}^MDM_T02", control_id, "2.6"),
        f"EVN||{now}",
        _pid(patient, ins_validated),
        "PV1|1|O",
        "|".join(txa),
    ]
    next_obx = 1
    if cda is not None:
        segments.append(_cda_obx(cda, statuses[trigger]))
        next_obx = 2
    segments.append(_prt(organization, sending_structure))
    segments += _flag_obx(next_obx, flags)
    if viewer_partial_url:
        segments.append(_viewer_obx(next_obx + len(DEFAULT_FLAGS), viewer_partial_url))
    return (separator.join(segments) + separator).encode("utf-8")


def make_omi_cancel(
    *,
    accession: str,
    study_uid: str,
    patient: PatientIdentity = DEMO_PATIENT,
    accession_issuer: str = DEMO_ACCESSION_ISSUER,
    order: str = "ORD0001",
    order_issuer: str = DEMO_ORDER_ISSUER,
    modality: str = "CT",
    control_id: str | None = None,
    separator: str = "\r",
) -> bytes:
    """An OMI^O23 (v2.5) cancelling an exam: ORC-1 CA, IPC-1 accession, IPC-3 study UID."""
    now = datetime.now().strftime("%Y%m%d%H%M%S")
    segments = [
        _msh("OMI^O23^OMI_O23", control_id, "2.5"),
        _pid(patient),
        "PV1|1|O",
        f"ORC|CA|{_hl7_escape(order)}^^{order_issuer}^ISO|||CA||||{now}",
        f"TQ1|1||||||{now}",
        f"OBR|1|{_hl7_escape(order)}^^{order_issuer}^ISO||{DEMO_ACT.code}^{DEMO_ACT.display}^LN",
        f"IPC|{_hl7_escape(accession)}^^{accession_issuer}^ISO|RP001|{study_uid}|SPS001|{modality}",
    ]
    return (separator.join(segments) + separator).encode("utf-8")
