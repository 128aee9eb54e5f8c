"""Synthetic fixtures (DICOM studies, CR-IMG reports, HL7 messages) for tests, demos and benchmarks."""
