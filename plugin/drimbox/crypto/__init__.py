"""Keys and certificates, the test PKI, and XML signatures (XML-DSig, XAdES-BASELINE-B)."""
