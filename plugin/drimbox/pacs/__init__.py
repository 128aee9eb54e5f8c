"""Reading what the PACS (Orthanc) holds, over its REST API, without importing ``orthanc``."""
