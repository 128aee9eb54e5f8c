"""Names, UUIDs and codes of IHE XDS.b / ebRIM 3.0 and of the French DMP (CI-SIS), as the simulator checks them."""

from __future__ import annotations

# Namespaces
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://www.w3.org/2005/08/addressing"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
SAML2 = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
RS = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
LCM = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
QUERY = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
XDSB = "urn:ihe:iti:xds-b:2007"
XOP = "http://www.w3.org/2004/08/xop/include"
HL7V3 = "urn:hl7-org:v3"

# WS-Addressing actions (request -> response)
ACTION_ITI41 = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
ACTION_ITI18 = "urn:ihe:iti:2007:RegistryStoredQuery"
ACTION_ITI43 = "urn:ihe:iti:2007:RetrieveDocumentSet"
ACTION_ITI57 = "urn:ihe:iti:2010:UpdateDocumentSet"
ACTION_PATIENTS = "urn:hl7-org:v3:PRPA_IN201307UV02"
ACTION_PATIENTS_RESPONSE = "urn:hl7-org:v3:PRPA_IN201308UV02"
ACTION_HABILITATIONS = "urn:hl7-org:v3:PRPA_IN201307UV02:Habilitations"


def response_action(action: str) -> str:
    if action == ACTION_PATIENTS:
        return ACTION_PATIENTS_RESPONSE
    return action + "Response"


# ebRIM object types and classification schemes
OBJECT_TYPE_STABLE_DOC = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
OBJECT_TYPE_ON_DEMAND_DOC = "urn:uuid:34268e47-fdf5-41a6-ba33-82133c465248"
OBJECT_TYPE_REGISTRY_PACKAGE = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:RegistryPackage"
OBJECT_TYPE_CLASSIFICATION = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Classification"
OBJECT_TYPE_EXTERNAL_IDENTIFIER = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:ExternalIdentifier"
OBJECT_TYPE_ASSOCIATION = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Association"
NODE_SUBMISSION_SET = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"

SS_AUTHOR = "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d"
SS_CONTENT_TYPE = "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500"
SS_PATIENT_ID = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446"
SS_SOURCE_ID = "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832"
SS_UNIQUE_ID = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"

DE_AUTHOR = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d"
DE_CLASS_CODE = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"
DE_CONFIDENTIALITY = "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f"
DE_EVENT_CODE = "urn:uuid:2c6b8cb7-8b2a-4051-b291-b1ae6a575ef4"
DE_FORMAT_CODE = "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d"
DE_FACILITY_TYPE = "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1"
DE_PRACTICE_SETTING = "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead"
DE_TYPE_CODE = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"
DE_PATIENT_ID = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
DE_UNIQUE_ID = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"

SLOT_REFERENCE_ID_LIST = "urn:ihe:iti:xds:2013:referenceIdList"

# Association types
ASSOC_HAS_MEMBER = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
ASSOC_RPLC = "urn:ihe:iti:2007:AssociationType:RPLC"
ASSOC_SIGNS = "urn:ihe:iti:2007:AssociationType:signs"
ASSOC_UPDATE_AVAILABILITY = "urn:ihe:iti:2010:AssociationType:UpdateAvailabilityStatus"
ASSOC_RELATIONSHIPS = {
    ASSOC_RPLC,
    "urn:ihe:iti:2007:AssociationType:APND",
    "urn:ihe:iti:2007:AssociationType:XFRM",
    "urn:ihe:iti:2007:AssociationType:XFRM_RPLC",
}

# Statuses
STATUS_APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
STATUS_DEPRECATED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated"
STATUS_DELETED = "urn:asip:ci-sis:2010:StatusType:Deleted"

RESPONSE_SUCCESS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
RESPONSE_FAILURE = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
RESPONSE_PARTIAL = "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"
SEVERITY_ERROR = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"

# Stored queries
SQ_FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
SQ_FIND_DOCUMENTS_BY_REFERENCE_ID = "urn:uuid:12941a89-e02e-4be5-967c-ce4bfc8fe492"
SQ_GET_DOCUMENTS = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"

# Codes of the DMP (docs/conformance.md, DMP)
OID_INS = ("1.2.250.1.213.1.4.8", "1.2.250.1.213.1.4.9", "1.2.250.1.213.1.4.10", "1.2.250.1.213.1.4.11")
OID_IDNPS = "1.2.250.1.71.4.2.1"
OID_STRUCTURE = "1.2.250.1.71.4.2.2"
OID_SECTEUR_ACTIVITE = "1.2.250.1.71.4.2.4"
OID_PROFESSION = "1.2.250.1.71.1.2.7"
OID_SPECIALTY = "1.2.250.1.71.4.2.5"
OID_PURPOSE_OF_USE = "1.2.250.1.213.1.1.4.248"
OID_CONFIDENTIALITY_HL7 = "2.16.840.1.113883.5.25"
OID_CONFIDENTIALITY_DMP = "1.2.250.1.213.1.1.4.13"
OID_PRACTICE_SETTING = "1.2.250.1.213.1.1.4.9"
OID_CONTENT_TYPE = "1.2.250.1.213.2.2"

KOS_CLASS = ("31", "1.2.250.1.213.1.1.4.1")
KOS_TYPE = ("IMG-KOS", "1.2.250.1.213.1.1.4.12")
KOS_FORMAT = ("1.2.840.10008.5.1.4.1.1.88.59", "1.2.840.10008.2.6.1")
KOS_MIME = "application/dicom"
# eventCodeList of a KOS: modality and anatomical region, in the DMP value sets or (as samples do) DICOM / SNOMED CT,
# plus the CCAM act (1.2.250.1.213.2.5) seen in the ANS validator sample.
KOS_EVENT_SCHEMES = ("1.2.250.1.213.1.1.5.618", "1.2.250.1.213.1.1.5.695", "1.2.840.10008.2.16.4",
                     "2.16.840.1.113883.6.96", "1.2.250.1.213.2.5")

SIG_CLASS_CODE = "urn:oid:1.3.6.1.4.1.19376.1.2.1.1.1"
SIG_TYPE_CODE = "E1762"
SIG_FORMAT_CODE = "http://www.w3.org/2000/09/xmldsig#"
SIG_EVENT_CODE = "1.2.840.10065.1.12.1.14"
SIG_MIME = "text/xml"
# Coding schemes seen for the signature document's codes (ANS validator sample first).
SIG_CLASS_SCHEMES = ("URN", "1.3.6.1.4.1.19376.1.2.1.1.1", "IHE")
SIG_TYPE_SCHEMES = ("ASTM", "1.3.6.1.4.1.19376.1.2.1.1.1")
SIG_FORMAT_SCHEMES = ("URN", "http://www.w3.org/2000/09/xmldsig#", "1.3.6.1.4.1.19376.1.2.3")
SIG_EVENT_SCHEMES = ("1.2.840.10065.1.12", "1.2.840.10065.1.12.1")

CONFIDENTIALITY_HL7_CODES = ("N", "R", "V")
CONFIDENTIALITY_DMP_CODES = ("MASQUE_PS", "INVISIBLE_PATIENT", "INVISIBLE_REPRESENTANTS_LEGAUX", "CONNEXION_SECRETE")
PURPOSES_OF_USE = ("normal", "bris_de_glace", "centre_15")
AUTHENTICATION_MODES = ("DIRECTE", "INDIRECTE", "INDIRECTE_RENFORCEE")
AUTHN_CONTEXT_TLS_CLIENT = "urn:oasis:names:tc:SAML:2.0:ac:classes:TLSClient"
NAMEID_FORMAT_X509 = "urn:oasis:names:tc:SAML:1.1:nameid-format:X509SubjectName"

REPOSITORY_UNIQUE_ID = "1.2.250.1.213.4.1.1.999.1"
