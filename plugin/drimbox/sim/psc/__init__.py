"""A local Pro Santé Connect (OpenID Connect provider) for development, tests and demos."""

from drimbox.sim.psc.professionals import DEFAULT_PROFESSIONALS
from drimbox.sim.psc.server import PscSimulator

__all__ = ["DEFAULT_PROFESSIONALS", "PscSimulator"]
