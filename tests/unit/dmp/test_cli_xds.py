from __future__ import annotations

import json

from dmp_testdata import STUDY_UID, make_kos
from lxml import etree

from drimbox.cli import main
from drimbox.crypto.pki import create_test_pki
from drimbox.dmp import xds_ids
from drimbox.reports.model import StudyOrder
from drimbox.samples.reports import make_cda

NS = {"rim": xds_ids.RIM}


def write_inputs(tmp_path):
    (tmp_path / "kos.dcm").write_bytes(make_kos())
    cda = make_cda(studies=[StudyOrder(STUDY_UID, accession="A1", accession_issuer="1.2.3", order="O1",
                                       order_issuer="1.2.4")])
    (tmp_path / "cr.xml").write_bytes(cda)


def test_render_with_test_pki(tmp_path, capsys):
    write_inputs(tmp_path)
    create_test_pki(tmp_path / "pki", boxes=("box-a",))
    code = main(["xds", "render", "--kos", str(tmp_path / "kos.dcm"), "--report", str(tmp_path / "cr.xml"),
                 "--out", str(tmp_path / "lot.xml"), "--pki", str(tmp_path / "pki"), "--flag", "INVISIBLE_PATIENT",
                 "--replaces", "urn:uuid:11111111-2222-4333-8444-555555555555", "--json"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert "box-a" in printed["signing"]
    envelope = etree.parse(str(tmp_path / "lot.xml")).getroot()
    assert envelope.tag == f"{{{xds_ids.SOAP12}}}Envelope"
    assert envelope.find(f".//{{{xds_ids.WSSE}}}Security/{{{xds_ids.SAML2}}}Assertion") is not None
    kos_entry = envelope.xpath(f".//rim:ExtrinsicObject[@id='{printed['kos_entry_uuid']}']", namespaces=NS)[0]
    confidentiality = kos_entry.xpath(
        "rim:Classification[@classificationScheme='urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f']/@nodeRepresentation",
        namespaces=NS)
    assert confidentiality == ["N", "INVISIBLE_PATIENT"]
    references = kos_entry.xpath("rim:Slot[@name='urn:ihe:iti:xds:2013:referenceIdList']//rim:Value/text()",
                                 namespaces=NS)
    assert "A1^^^&1.2.3&ISO^urn:ihe:iti:xds:2013:accession" in references
    assert envelope.xpath(".//rim:Association[@associationType='urn:ihe:iti:2007:AssociationType:RPLC']",
                          namespaces=NS)


def test_render_without_pki_says_the_key_is_throwaway(tmp_path, capsys):
    write_inputs(tmp_path)
    code = main(["xds", "render", "--kos", str(tmp_path / "kos.dcm"), "--report", str(tmp_path / "cr.xml"),
                 "--out", str(tmp_path / "lot.xml")])
    assert code == 0
    assert "throwaway" in capsys.readouterr().out
    assert (tmp_path / "lot.xml").read_bytes().startswith(b"<?xml")


def test_render_reports_unusable_inputs(tmp_path, capsys):
    (tmp_path / "kos.dcm").write_bytes(b"not dicom")
    (tmp_path / "cr.xml").write_bytes(make_cda())
    code = main(["xds", "render", "--kos", str(tmp_path / "kos.dcm"), "--report", str(tmp_path / "cr.xml"),
                 "--out", str(tmp_path / "lot.xml")])
    assert code == 1
    assert "cannot build the lot" in capsys.readouterr().err
    assert main(["xds", "render", "--kos", str(tmp_path / "missing.dcm"), "--report", str(tmp_path / "cr.xml"),
                 "--out", str(tmp_path / "lot.xml")]) == 2


def test_render_lot_uses_the_configured_signing_key(tmp_path, kos, report):
    from drimbox.config.sections import IdentitySettings
    from drimbox.crypto import xmlsig
    from drimbox.crypto.keys import load_certificate_chain
    from drimbox.dmp.render import render_lot
    from drimbox.dmp.settings import DmpSettings

    index = create_test_pki(tmp_path / "pki", boxes=("box-a",))
    signing = index["boxes"]["box-a"]["signing"]
    settings = DmpSettings(signing_cert=signing["fullchain"], signing_key=signing["key"])
    data = render_lot(kos, report, {}, settings, IdentitySettings())
    assertion = etree.fromstring(data).find(f".//{{{xds_ids.SAML2}}}Assertion")
    root = load_certificate_chain(index["root"]["cert"])[0]
    assert xmlsig.verify_enveloped(assertion, [root]).cert.subject.rfc4514_string() == signing["subject"]
