"""The consumer role: from the RIS's appel contextuel to a patient's imaging history. Pure core, no ``orthanc``."""
