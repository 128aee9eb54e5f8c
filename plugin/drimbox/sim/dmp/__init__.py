"""A strict simulator of the French DMP (IHE XDS.b registry and repository with the CI-SIS rules).

It checks what the national validators check, independently of the box's own DMP client.
"""

from .server import DmpSimulator

__all__ = ["DmpSimulator"]
