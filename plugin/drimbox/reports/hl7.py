"""Read an inbound HL7 v2 message (ORU^R01, MDM^T02/T10/T04, OMI^O23) into a :class:`ReportMessage`.

:func:`parse_message` never raises on bad input: problems go to ``errors`` (the message cannot be used) or
``warnings`` (used, but something was odd). Event mapping (docs/conformance.md, "HL7 v2 intake"):

- ORU^R01: ORC-1 ``CA`` or OBX-11 ``D`` -> withdraw; ORC-1 ``RO`` or OBX-11 ``C`` -> replace; OBX-11 ``F`` (or
  empty with ORC-1 ``NW``) -> publish, or replace when the CDA itself replaces a parent (``relatedDocument
  typeCode="RPLC"``: national messages keep ORC-1 ``NW`` for a version 2); any other OBX-11 (e.g. ``P``) is
  refused;
- MDM: ``T02`` publish, ``T10`` replace (TXA-13 = replaced id), ``T04`` withdraw; TXA-12 = report id;
- OMI^O23 with ORC-1 ``CA`` -> cancel (IPC-1 accession, IPC-3 study UID, IPC-5 modality).

Patient: PID-3 repetitions (INS = any repetition whose assigning authority OID is an INS OID; IPP = type
``PI``), PID-5 (type ``L`` birth name, ``D`` used name), PID-7, PID-8, PID-11 type ``BDL`` component 9
(birthplace), PID-32. When a CDA is present its patient is merged with PID (CDA first) after checking that
INS, birth date, sex and birth name agree.

PRT-8 (the ``SB`` participation, else the first PRT with PRT-8) is the sending structure: id from PRT-8.10,
else PRT-8.3. It may differ from the CDA author's representedOrganization id (the national update test
message names another "Sending Facility"): the CDA's author organisation publishes and a difference is only a
warning for the operator; a one-character type prefix (FINESS ``1``, SIRET ``3``, RPPS ``4``) present on one
side only is not even a difference.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import replace

from drimbox.reports.cda import INS_OIDS, format_ii, is_dicom_uid, parse_cda
from drimbox.reports.errors import ReportError
from drimbox.reports.flags import CODING_SYSTEM, DEFAULT_FLAGS, parse_flag_value
from drimbox.reports.model import PatientIdentity, Report, ReportEvent, ReportMessage, StudyOrder
from drimbox.reports.text import comparable_name, normalise_modality
from drimbox.reports.v2 import Message, Segment, components, parse_er7, split_component

REPORT_OBX_CODE = "18748-4"
VIEWER_OBX_CODE = "URL_PARTIELLE_VIEWER"
_MDM_EVENTS = {"T02": ReportEvent.PUBLISH, "T10": ReportEvent.REPLACE, "T04": ReportEvent.WITHDRAW}
_MDM_EXPECTED_OBX11 = {"T02": "F", "T10": "C", "T04": "D"}


def parse_message(raw: bytes) -> ReportMessage:
    """Parse one HL7 v2 message (without MLLP framing). Never raises on bad input."""
    try:
        return _Parser(raw).run()
    except Exception as exc:  # a bug must not kill the listener: report it as an error of this message
        return ReportMessage(message_type="", errors=(f"internal error while parsing: {type(exc).__name__}: {exc}",))


class _Parser:
    def __init__(self, raw: bytes) -> None:
        self.raw = raw if isinstance(raw, bytes) else bytes(raw)
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.pid_birth_name_typed = False

    # -- driver ----------------------------------------------------------------------------------------------
    def run(self) -> ReportMessage:
        text = self._decode()
        message = parse_er7(text)
        msh = message.first("MSH")
        if msh is None or not message.has_msh:
            return ReportMessage(message_type="", errors=("no valid MSH segment: not an HL7 v2 message",))
        code = msh.component(9, 1).upper()
        trigger = msh.component(9, 2).upper()
        if not trigger:
            evn = message.first("EVN")
            trigger = evn.component(1, 1).upper() if evn else ""
        message_type = f"{code}^{trigger}" if trigger else code
        control_id = msh.component(10, 1)
        if not control_id:
            self.warnings.append("MSH-10 (message control id) is empty")

        patient = self._pid_patient(message)
        fields: dict = {}
        if code == "ORU" and trigger == "R01":
            fields = self._report_message(message, patient, mdm_trigger=None)
        elif code == "MDM" and trigger in _MDM_EVENTS:
            fields = self._report_message(message, patient, mdm_trigger=trigger)
        elif code == "OMI" and trigger == "O23":
            fields = self._cancel_message(message, patient)
        else:
            self.errors.append(
                f"unsupported message type {message_type or '(empty MSH-9)'}: expected ORU^R01, MDM^T02, MDM^T10, "
                "MDM^T04 or OMI^O23")
            fields = {"patient": patient}
        return ReportMessage(
            message_type=message_type,
            control_id=control_id,
            errors=tuple(self.errors),
            warnings=tuple(self.warnings),
            **fields,
        )

    def _decode(self) -> str:
        data = self.raw.strip(b"\x0b\x1c\r\n ")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            self.warnings.append("the message is not valid UTF-8; read as Windows-1252")
            return data.decode("cp1252", errors="replace")

    # -- ORU / MDM -------------------------------------------------------------------------------------------
    def _report_message(self, message: Message, patient: PatientIdentity, mdm_trigger: str | None) -> dict:
        cda_obx = self._cda_obx(message)
        obx11 = cda_obx.component(11, 1).upper() if cda_obx else ""
        orc1 = (orc.component(1, 1).upper() if (orc := message.first("ORC")) else "")
        event = self._mdm_event(mdm_trigger, obx11) if mdm_trigger else self._oru_event(orc1, obx11)

        cda = self._cda_bytes(cda_obx) if cda_obx else None
        report: Report | None = None
        if cda is not None:
            try:
                report = parse_cda(cda)
            except ReportError as exc:
                self.errors.append(f"the CDA is unusable: {exc}")
            else:
                self.warnings.extend(f"CDA: {w}" for w in report.warnings)
        elif cda_obx is None and event in (ReportEvent.PUBLISH, ReportEvent.REPLACE):
            self.errors.append(f"no CDA: no OBX whose OBX-3 is {REPORT_OBX_CODE} (the report itself)")

        txa = message.first("TXA")
        header_id = _ei_to_id(txa, 12) if txa else ""
        header_replaced = _ei_to_id(txa, 13) if txa else ""
        if not header_id and not mdm_trigger:
            obr = message.first("OBR")
            header_id = _ei_to_id(obr, 3) if obr else ""

        report_id = report.report_id if report else None
        if report and header_id and not _same_document(header_id, report.report_id):
            self.warnings.append(
                f"{'TXA-12' if txa else 'OBR-3'} {header_id!r} differs from the CDA id {report.report_id!r}")
        if report_id is None and cda is None:
            if header_id:
                report_id = header_id
                if not txa:
                    self.warnings.append(f"no CDA: the report id is taken from OBR-3 ({header_id})")
            elif event is not None:
                self.errors.append("no report id: neither a CDA nor TXA-12/OBR-3 names the report")

        replaces = (report.replaces_report_id if report else None) or header_replaced or None
        if report and report.replaces_report_id and header_replaced and not _same_document(
                header_replaced, report.replaces_report_id):
            self.warnings.append(
                f"TXA-13 {header_replaced!r} differs from the CDA relatedDocument RPLC {report.replaces_report_id!r}")
        if event is ReportEvent.REPLACE and not replaces:
            self.warnings.append("replacement without the replaced report id (no TXA-13, no CDA relatedDocument RPLC)")
        if event is ReportEvent.PUBLISH and report and report.replaces_report_id:
            event = ReportEvent.REPLACE

        if report:
            patient = self._merge_patient(patient, report.patient)
        elif not patient.ins and event is not None:
            self.warnings.append("no INS in PID-3")
        sending = self._sending_structure(message)
        if report and sending and report.organization.id and not _same_structure(sending, report.organization.id):
            self.warnings.append(
                f"PRT-8 sending structure {sending!r} differs from the CDA author's representedOrganization id "
                f"{report.organization.id!r}: published under the CDA's author organisation")
        return {
            "event": event,
            "report_id": report_id,
            "replaces_report_id": replaces,
            "patient": patient,
            "studies": report.studies if report else (),
            "modalities": report.modalities if report else (),
            "flags": self._flags(message),
            "viewer_partial_url": self._viewer_url(message),
            "sending_structure": sending,
            "cda": cda,
            "report": report,
        }

    def _oru_event(self, orc1: str, obx11: str) -> ReportEvent | None:
        if orc1 == "CA" or obx11 == "D":
            return ReportEvent.WITHDRAW
        if orc1 == "RO" or obx11 == "C":
            return ReportEvent.REPLACE
        if obx11 == "F" or (not obx11 and orc1 == "NW"):
            if orc1 not in ("NW", ""):
                self.warnings.append(f"ORC-1 {orc1!r} with OBX-11 F read as a new report")
            return ReportEvent.PUBLISH
        if obx11:
            self.errors.append(f"OBX-11 {obx11!r}: only final (F), corrected (C) or deleted (D) reports are handled")
        else:
            self.errors.append(f"cannot tell the event: ORC-1 {orc1 or '(empty)'!r} and no OBX-11 on the report OBX")
        return None

    def _mdm_event(self, trigger: str, obx11: str) -> ReportEvent:
        expected = _MDM_EXPECTED_OBX11[trigger]
        if obx11 and obx11 != expected:
            self.warnings.append(f"MDM^{trigger} usually has OBX-11 {expected}, not {obx11}")
        return _MDM_EVENTS[trigger]

    def _cda_obx(self, message: Message) -> Segment | None:
        found = [obx for obx in message.all("OBX") if obx.component(3, 1).upper() == REPORT_OBX_CODE]
        if len(found) > 1:
            self.warnings.append(f"{len(found)} OBX carry {REPORT_OBX_CODE}; the first one is used")
        return found[0] if found else None

    def _cda_bytes(self, obx: Segment) -> bytes | None:
        reps = obx.repetitions(5)
        parts = components(reps[0], obx.delimiters) if reps else []
        if len(parts) < 5 or not parts[4]:
            self.errors.append(f"OBX-5 of the {REPORT_OBX_CODE} OBX is not ^TEXT^XML^Base64^<data>")
            return None
        encoding = parts[3].upper()
        data = parts[4]
        if encoding in ("BASE64", "B64"):
            try:
                return _b64decode(data)
            except (binascii.Error, ValueError) as exc:
                self.errors.append(f"OBX-5 of the {REPORT_OBX_CODE} OBX is not valid base64: {exc}")
                return None
        if encoding in ("A", "NONE", ""):
            return data.encode("utf-8")
        self.errors.append(f"OBX-5.4 encoding {parts[3]!r} is not supported (expected Base64)")
        return None

    def _flags(self, message: Message) -> dict[str, bool]:
        flags = dict(DEFAULT_FLAGS)
        for obx in message.all("OBX"):
            if obx.component(3, 3).upper() != CODING_SYSTEM.upper():
                continue
            name = obx.component(3, 1).upper()
            if name not in flags:
                continue
            value = parse_flag_value(obx.component(5, 1))
            if value is None:
                self.warnings.append(f"{name}: unreadable value {obx.component(5, 1)!r}; default {flags[name]} kept")
            else:
                flags[name] = value
        return flags

    def _viewer_url(self, message: Message) -> str | None:
        for obx in message.all("OBX"):
            if obx.component(3, 1).upper() != VIEWER_OBX_CODE:
                continue
            reps = obx.repetitions(5)
            parts = components(reps[0], obx.delimiters) if reps else []
            data = parts[4] if len(parts) >= 5 and parts[4] else (parts[0] if parts else "")
            if not data:
                self.warnings.append(f"{VIEWER_OBX_CODE} OBX has an empty OBX-5")
                return None
            try:
                return _b64decode(data).decode("utf-8")
            except (binascii.Error, ValueError, UnicodeDecodeError):
                if re.match(r"^[a-z][a-z0-9+.-]*://", data, re.I) or data.startswith("/"):
                    self.warnings.append(f"{VIEWER_OBX_CODE} is not base64; taken as plain text")
                    return data
                self.warnings.append(f"{VIEWER_OBX_CODE} is neither base64 nor a URL; ignored")
                return None
        return None

    def _sending_structure(self, message: Message) -> str:
        prts = [prt for prt in message.all("PRT") if prt.field(8)]
        chosen = next((prt for prt in prts if prt.component(4, 1).upper() == "SB"), prts[0] if prts else None)
        if chosen is None:
            return ""
        return chosen.component(8, 10) or chosen.component(8, 3)

    # -- OMI (cancellation) ----------------------------------------------------------------------------------
    def _cancel_message(self, message: Message, patient: PatientIdentity) -> dict:
        orc = message.first("ORC")
        orc1 = orc.component(1, 1).upper() if orc else ""
        if orc1 != "CA":
            self.errors.append(f"OMI^O23 with ORC-1 {orc1 or '(empty)'!r}: only cancellations (CA) are handled")
        order = orc.component(2, 1) if orc else ""
        order_issuer = (orc.component(2, 3) or orc.component(2, 2)) if orc else ""
        studies: list[StudyOrder] = []
        modalities: list[str] = []
        for ipc in message.all("IPC"):
            accession = ipc.component(1, 1)
            study_uid = ipc.component(3, 1)
            if study_uid and not is_dicom_uid(study_uid):
                self.warnings.append(f"IPC-3 {study_uid!r} is not a valid DICOM UID")
            if not (accession or study_uid):
                continue
            studies.append(StudyOrder(study_uid=study_uid, accession=accession,
                                      accession_issuer=ipc.component(1, 3) or ipc.component(1, 2),
                                      order=order, order_issuer=order_issuer if order else ""))
            modality = ipc.component(5, 1)
            if modality and normalise_modality(modality) not in modalities:
                modalities.append(normalise_modality(modality))
        if not studies and orc1 == "CA":
            self.errors.append("the cancellation names neither an accession number (IPC-1) nor a study UID (IPC-3)")
        return {
            "event": ReportEvent.CANCEL if orc1 == "CA" else None,
            "patient": patient,
            "studies": tuple(studies),
            "modalities": tuple(modalities),
            "flags": dict(DEFAULT_FLAGS),
            "sending_structure": self._sending_structure(message),
        }

    # -- patient ---------------------------------------------------------------------------------------------
    def _pid_patient(self, message: Message) -> PatientIdentity:
        pid = message.first("PID")
        if pid is None:
            self.errors.append("no PID segment (patient)")
            return PatientIdentity()
        ins = ins_oid = ipp = ipp_issuer = None
        for rep_index, rep in enumerate(pid.repetitions(3)):
            value = split_component(rep, pid.delimiters, 1)
            authority_ns = split_component(rep, pid.delimiters, 4, 1)
            authority_oid = split_component(rep, pid.delimiters, 4, 2)
            id_type = split_component(rep, pid.delimiters, 5).upper()
            if not value:
                continue
            if authority_oid in INS_OIDS:
                if ins is None:
                    ins, ins_oid = value, authority_oid
                elif value != ins:
                    self.warnings.append(f"PID-3 has a second INS {value}; using {ins}")
            elif id_type.startswith("INS") or id_type == "NH":
                self.warnings.append(
                    f"PID-3 repetition {rep_index + 1} looks like an INS but its OID {authority_oid or '(none)'} "
                    "is not an accepted INS OID; ignored")
            elif id_type == "PI" and ipp is None:
                ipp, ipp_issuer = value, authority_oid or authority_ns or None
        names: dict[str, tuple[str, str]] = {}
        for rep in pid.repetitions(5):
            name_type = split_component(rep, pid.delimiters, 7).upper()
            family_name = split_component(rep, pid.delimiters, 1, 1) or split_component(rep, pid.delimiters, 1)
            names.setdefault("L" if name_type == "B" else name_type,
                             (family_name, split_component(rep, pid.delimiters, 2)))
        # Birth name: type L (or B); a name without type is only a fallback and is not trusted for cross-checks.
        self.pid_birth_name_typed = "L" in names
        family, given = names.get("L") or names.get("") or ("", "")
        used_family, used_given = names.get("D", ("", ""))
        birthplace = None
        for rep in pid.repetitions(11):
            if split_component(rep, pid.delimiters, 7).upper() == "BDL":
                birthplace = split_component(rep, pid.delimiters, 9) or None
                break
        sex = pid.component(8, 1).upper()
        if sex and sex not in ("M", "F", "U"):
            sex = "U"
        reliability = tuple(split_component(rep, pid.delimiters, 1).upper() for rep in pid.repetitions(32)
                            if split_component(rep, pid.delimiters, 1))
        if ins and "VALI" not in reliability:
            self.warnings.append(f"PID-32 is {'~'.join(reliability) or 'empty'}, not VALI: the INS is not validated")
        return PatientIdentity(
            ins=ins, ins_oid=ins_oid, ipp=ipp, ipp_issuer=ipp_issuer,
            family=family, given=given, sex=sex, birth_date=pid.component(7, 1)[:8], birthplace=birthplace,
            used_family=used_family or family, used_given=used_given or given, identity_reliability=reliability,
        )

    def _merge_patient(self, pid: PatientIdentity, cda: PatientIdentity) -> PatientIdentity:
        if pid.ins and cda.ins and (pid.ins != cda.ins or (pid.ins_oid and cda.ins_oid and pid.ins_oid != cda.ins_oid)):
            self.errors.append(
                f"INS mismatch: PID-3 has {pid.ins} ({pid.ins_oid}), the CDA has {cda.ins} ({cda.ins_oid})")
        if pid.birth_date and cda.birth_date and pid.birth_date != cda.birth_date:
            self.errors.append(f"birth date mismatch: PID-7 {pid.birth_date}, CDA {cda.birth_date}")
        if pid.sex and cda.sex and pid.sex != cda.sex:
            self.errors.append(f"sex mismatch: PID-8 {pid.sex}, CDA {cda.sex}")
        if pid.family and cda.family and comparable_name(pid.family) != comparable_name(cda.family):
            problem = f"birth name mismatch: PID-5 {pid.family!r}, CDA {cda.family!r}"
            if self.pid_birth_name_typed:
                self.errors.append(problem)
            else:
                self.warnings.append(problem + " (PID-5 has no name type L)")
        merged = {name: getattr(cda, name) or getattr(pid, name) for name in (
            "ins", "ins_oid", "family", "given", "sex", "birth_date", "birthplace", "used_family", "used_given")}
        if pid.used_family and pid.used_family != pid.family and cda.used_family == cda.family:
            merged["used_family"], merged["used_given"] = pid.used_family, pid.used_given  # only PID-5 type D has it
        # The local IPP is the RIS's business: PID first.
        merged["ipp"] = pid.ipp or cda.ipp
        merged["ipp_issuer"] = pid.ipp_issuer if pid.ipp else cda.ipp_issuer
        return replace(cda, **merged, identity_reliability=pid.identity_reliability)


def _b64decode(data: str) -> bytes:
    compact = re.sub(r"\s+", "", data)
    if not compact:
        raise ValueError("empty")
    compact += "=" * (-len(compact) % 4)
    return base64.b64decode(compact, validate=True)


def _ei_to_id(segment: Segment, index: int) -> str:
    """An EI field (id^namespace^universal id^type) as "root^extension" (or just the id)."""
    entity = segment.component(index, 1)
    universal = segment.component(index, 3)
    if entity and universal:
        return format_ii(universal, entity)
    return entity or universal


def _same_document(header: str, cda_id: str) -> bool:
    if header == cda_id:
        return True
    root, _, extension = cda_id.partition("^")
    return header in (root, extension)


def _same_structure(a: str, b: str) -> bool:
    if a == b:
        return True
    longer, shorter = (a, b) if len(a) > len(b) else (b, a)
    return len(longer) == len(shorter) + 1 and longer[0] in "1234" and longer[1:] == shorter
