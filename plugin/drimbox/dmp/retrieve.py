"""ITI-43 Retrieve Document Set: the request and the documents of its (MTOM or inline) answer."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from lxml import etree

from drimbox.dmp import xds_ids
from drimbox.dmp.errors import DmpUnavailable
from drimbox.dmp.mtom import MtomParts


@dataclass(frozen=True)
class RetrievedDocument:
    repository_id: str
    unique_id: str
    mime_type: str
    data: bytes
    home_community_id: str = ""


def retrieve_request(repository_id: str, unique_ids: list[str], home_community_id: str = "") -> etree._Element:
    request = etree.Element(f"{{{xds_ids.XDS}}}RetrieveDocumentSetRequest", nsmap={"xds": xds_ids.XDS})
    for unique_id in unique_ids:
        document = etree.SubElement(request, f"{{{xds_ids.XDS}}}DocumentRequest")
        if home_community_id:
            etree.SubElement(document, f"{{{xds_ids.XDS}}}HomeCommunityId").text = home_community_id
        etree.SubElement(document, f"{{{xds_ids.XDS}}}RepositoryUniqueId").text = repository_id
        etree.SubElement(document, f"{{{xds_ids.XDS}}}DocumentUniqueId").text = unique_id
    return request


def retrieved_documents(response: etree._Element, parts: MtomParts | None) -> list[RetrievedDocument]:
    """Documents of an ``xds:RetrieveDocumentSetResponse``; xop:Include resolves against ``parts``."""
    documents = []
    for item in response.iterfind(f"{{{xds_ids.XDS}}}DocumentResponse"):
        content = item.find(f"{{{xds_ids.XDS}}}Document")
        if content is None:
            raise DmpUnavailable("DocumentResponse without Document")
        include = content.find(f"{{{xds_ids.XOP}}}Include")
        if include is not None:
            if parts is None:
                raise DmpUnavailable("xop:Include in a non-MTOM answer")
            try:
                data = parts.by_href(include.get("href", ""))
            except ValueError as error:
                raise DmpUnavailable(str(error)) from None
        else:
            try:
                data = base64.b64decode("".join((content.text or "").split()), validate=True)
            except binascii.Error:
                raise DmpUnavailable("Document is neither xop:Include nor base64") from None
        documents.append(RetrievedDocument(
            repository_id=item.findtext(f"{{{xds_ids.XDS}}}RepositoryUniqueId", "").strip(),
            unique_id=item.findtext(f"{{{xds_ids.XDS}}}DocumentUniqueId", "").strip(),
            mime_type=item.findtext(f"{{{xds_ids.XDS}}}mimeType", "").strip(),
            home_community_id=item.findtext(f"{{{xds_ids.XDS}}}HomeCommunityId", "").strip(),
            data=data,
        ))
    return documents
