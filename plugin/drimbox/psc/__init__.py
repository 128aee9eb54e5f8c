"""Pro Santé Connect: the OpenID Connect client, the professional model, signed session values."""

from drimbox.psc.access_reason import AccessReason
from drimbox.psc.client import PscClient
from drimbox.psc.errors import PscError
from drimbox.psc.model import Activity, ActivityChoice, Exercice, Introspection, Professional, Tokens
from drimbox.psc.userinfo import parse_userinfo

__all__ = [
    "AccessReason",
    "Activity",
    "ActivityChoice",
    "Exercice",
    "Introspection",
    "Professional",
    "PscClient",
    "PscError",
    "Tokens",
    "parse_userinfo",
]
