"""DRIMbox: the DRIM-M logic of an Orthanc-based imaging node.

The packages below never import ``orthanc``; only :mod:`drimbox.orthanc_adapter` does.
"""

__version__ = "0.1.0"
