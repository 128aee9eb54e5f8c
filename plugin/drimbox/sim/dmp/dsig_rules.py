"""Shape rules shared by the simulator's signature checks, applied before and around signxml's verification.

A verifier that reads the parsed tree sees things the signature does not cover: comments and processing
instructions (dropped by C14N without comments, yet they split lxml's ``.text``), a second signature, an element
that shares the signed element's ID. These helpers find them so the caller can refuse the message.
"""

from __future__ import annotations

from lxml import etree

DS = "http://www.w3.org/2000/09/xmldsig#"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
C14N_10 = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
C14N_11 = "http://www.w3.org/2006/12/xml-c14n11"
C14N_WITHOUT_COMMENTS = frozenset({EXC_C14N, C14N_10, C14N_11})
C14N_WITH_COMMENTS = frozenset({EXC_C14N + "WithComments", C14N_10 + "#WithComments", C14N_11 + "#WithComments"})
ENVELOPED = DS + "enveloped-signature"
RSA_SIGNATURE_METHODS = frozenset({
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
})
ID_ATTRIBUTE_NAMES = frozenset({"ID", "Id", "id"})


def ds(tag: str) -> str:
    return f"{{{DS}}}{tag}"


def smuggled_node(element: etree._Element) -> str:
    """A description of the first comment or processing instruction inside ``element``; "" when there is none."""
    for node in element.iter(etree.Comment, etree.ProcessingInstruction):
        kind = "comment" if isinstance(node, etree._Comment) else "processing instruction"
        parent = node.getparent()
        where = etree.QName(parent).localname if parent is not None else "the document"
        return f"a {kind} inside {where}"
    return ""


def document_level_node(root: etree._Element) -> str:
    """A comment, processing instruction or DOCTYPE outside the document element; "" when there is none."""
    if root.getroottree().docinfo.doctype:
        return "a DOCTYPE"
    for sibling in (*root.itersiblings(preceding=True), *root.itersiblings()):
        return "a comment" if isinstance(sibling, etree._Comment) else "a processing instruction"
    return ""


def elements_with_id(root: etree._Element, value: str) -> list[etree._Element]:
    """The elements of ``root``'s whole document carrying ``value`` in an ID-like attribute (any namespace)."""
    return [element for element in root.getroottree().getroot().iter(etree.Element)
            if any(etree.QName(name).localname in ID_ATTRIBUTE_NAMES and attr == value
                   for name, attr in element.attrib.items())]


def transform_algorithms(reference: etree._Element) -> list[str]:
    return [t.get("Algorithm", "") for t in reference.iterfind(f"{ds('Transforms')}/{ds('Transform')}")]
