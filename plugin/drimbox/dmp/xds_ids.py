"""Fixed identifiers of IHE XDS.b (ITI TF-3 4.2.5), IHE DSG and the French CI-SIS DMP profile."""

from __future__ import annotations

# Namespaces
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://www.w3.org/2005/08/addressing"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
SAML2 = "urn:oasis:names:tc:SAML:2.0:assertion"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
HL7V3 = "urn:hl7-org:v3"
RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
RS = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
LCM = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
QUERY = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
XDS = "urn:ihe:iti:xds-b:2007"
XOP = "http://www.w3.org/2004/08/xop/include"
DS = "http://www.w3.org/2000/09/xmldsig#"

NSMAP = {"rim": RIM, "rs": RS, "lcm": LCM, "query": QUERY, "xds": XDS}

# SOAP actions (WS-Addressing Action and the MIME action parameter)
ACTION_ITI41 = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
ACTION_ITI18 = "urn:ihe:iti:2007:RegistryStoredQuery"
ACTION_ITI43 = "urn:ihe:iti:2007:RetrieveDocumentSet"
ACTION_ITI57 = "urn:ihe:iti:2010:UpdateDocumentSet"
ACTION_PATIENT_QUERY = "urn:hl7-org:v3:PRPA_IN201307UV02"

# Object types and classification nodes
DOCUMENT_ENTRY_STABLE = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
SUBMISSION_SET_NODE = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"

# XDSDocumentEntry classification schemes
DE_AUTHOR = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d"
DE_CLASS_CODE = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"
DE_CONFIDENTIALITY_CODE = "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f"
DE_EVENT_CODE_LIST = "urn:uuid:2c6b8cb7-8b2a-4051-b291-b1ae6a575ef4"
DE_FORMAT_CODE = "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d"
DE_HEALTHCARE_FACILITY_TYPE_CODE = "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1"
DE_PRACTICE_SETTING_CODE = "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead"
DE_TYPE_CODE = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"
# XDSDocumentEntry external identifiers
DE_PATIENT_ID = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
DE_UNIQUE_ID = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"

# XDSSubmissionSet
SS_AUTHOR = "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d"
SS_CONTENT_TYPE_CODE = "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500"
SS_PATIENT_ID = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446"
SS_SOURCE_ID = "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832"
SS_UNIQUE_ID = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"

# Associations
ASSOC_HAS_MEMBER = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
ASSOC_SIGNS = "urn:ihe:iti:2007:AssociationType:signs"
ASSOC_RPLC = "urn:ihe:iti:2007:AssociationType:RPLC"
ASSOC_UPDATE_AVAILABILITY = "urn:ihe:iti:2010:AssociationType:UpdateAvailabilityStatus"

# Statuses
STATUS_APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
STATUS_DEPRECATED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated"
STATUS_DELETED_DMP = "urn:asip:ci-sis:2010:StatusType:Deleted"
RESPONSE_SUCCESS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
RESPONSE_FAILURE = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
RESPONSE_PARTIAL_SUCCESS = "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"

# Stored queries (ITI-18)
QUERY_FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
QUERY_FIND_DOCUMENTS_BY_REFERENCE_ID = "urn:uuid:12941a89-e02e-4be5-967c-ce4bfc8fe492"
QUERY_GET_DOCUMENTS = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"

# referenceIdList
REFERENCE_ID_LIST_SLOT = "urn:ihe:iti:xds:2013:referenceIdList"
REF_ACCESSION = "urn:ihe:iti:xds:2013:accession"
REF_ORDER = "urn:ihe:iti:xds:2013:order"
REF_STUDY_UID = "urn:ihe:iti:xds:2016:studyInstanceUID"

# CI-SIS code systems
SYSTEM_CLASS_CODE = "1.2.250.1.213.1.1.4.1"
SYSTEM_TYPE_CODE = "1.2.250.1.213.1.1.4.12"
SYSTEM_CONFIDENTIALITY_HL7 = "2.16.840.1.113883.5.25"
SYSTEM_CONFIDENTIALITY_DMP = "1.2.250.1.213.1.1.4.13"
SYSTEM_DICOM_UID_REGISTRY = "1.2.840.10008.2.6.1"
SYSTEM_PROFESSION = "1.2.250.1.71.1.2.7"
SYSTEM_SPECIALTY = "1.2.250.1.71.4.2.5"
SYSTEM_PURPOSE_OF_USE = "1.2.250.1.213.1.1.4.248"
SYSTEM_ID_NAT_PS = "1.2.250.1.71.4.2.1"
SYSTEM_ID_NAT_STRUCTURE = "1.2.250.1.71.4.2.2"
SYSTEM_FACILITY_TYPE = "1.2.250.1.71.4.2.4"

KOS_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.88.59"
DSG_PURPOSE_OF_SIGNATURE = "1.2.840.10065.1.12.1.14"
