"""The one access decision for peers' WADO-RS requests on the ``db`` host (docs/conformance.md).

nginx asks (``auth_request``) before forwarding a peer's request to Orthanc's DICOMweb; the adapter turns
the subrequest into a :class:`PeerRequest`, calls :func:`decide_peer_request` and answers with the
:class:`Decision`. Image bytes never pass through Python: on allow, nginx forwards to Orthanc with
``Decision.orthanc_accept`` as the only Accept header.

Deny by default. Checks, in this order (first failure answers):
  405 not GET (``Allow: GET``);
  403 no TLS client certificate verified by nginx (``$ssl_client_verify`` = ``SUCCESS``: chained to the
      configured IGC-Santé roots, within validity, not revoked when a CRL is configured), or its subject DN
      (compared structurally, drimbox.crypto.dn) is not an operator DN (``DNCertificatOperateur``) of the
      whitelist in force - first, so that unknown callers learn nothing and never make us call PSC. Skipped
      only when ``PeerAccess.ClientCertificate`` is ``off``;
  404 not a WADO-RS retrieve resource (QIDO, rendered, thumbnail, bulkdata, health check...);
  400 malformed UID or frame list in the path; missing/duplicated/non-Bearer Authorization; missing or
      malformed KOS-SOPInstanceUID; an Accept that offers nothing this resource can be sent as (an Accept
      whose every item is malformed included; no Accept at all means anything);
  401 token unknown to PSC or inactive, without expiry or expired, not issued by the configured PSC issuer,
      or issued to a client not in ``PeerAccess.AcceptedTokenClients`` when that list is set
      (``WWW-Authenticate: Bearer error="invalid_token"``);
  404 KOS unknown, withdrawn, for another study, or not covering the requested series/instance;
  410 an instance the KOS referenced but that was since rejected (IOCM): it existed and is gone for good;
  404 a study/series of which Orthanc holds nothing the KOS still covers;
  400 no transfer syntax both acceptable and producible;
  503 a fact could not be obtained (PSC or the store failing): never allow on error.
Every Decision carries HSTS and an audit row (``drimbox.audit.AuditEvent.to_row()``).

A study or series where Orthanc also holds instances the KOS does not list (images added since, IOCM-rejected
ones) is still served, but only what the KOS lists: the decision then says ``curated`` and the request goes to
the box's own curated retrieve instead of Orthanc's DICOMweb, which would send everything it holds.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Mapping, Protocol, Sequence

from drimbox.audit.event import ENTRY_WADO_RS, AuditEvent
from drimbox.trust.accept import (
    ORTHANC_LOSSLESS_TRANSCODABLE,
    accepts_metadata,
    choose_transfer_syntax,
    orthanc_accept_header,
    parse_accept,
    usable_for,
)

KOS_HEADER = "kos-sopinstanceuid"
CURATED_PREFIX = "/drimbox/peer-retrieve/"  # + KOS UID + "/" + WADO-RS path (drimbox.web.curated_retrieve)
DICOM_JSON_ACCEPT = "application/dicom+json"
_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
_FRAMES = re.compile(r"^[1-9][0-9]*(,[1-9][0-9]*)*$")


@dataclass(frozen=True)
class PeerRequest:
    """A peer's request as nginx saw it.

    ``path`` is what follows the WADO-RS base (``studies/{s}/series/{se}...``); a query string is ignored.
    ``headers`` has lower-case names; a value may be a list when the header was repeated (Accept).
    ``client_verify`` is nginx's ``$ssl_client_verify`` (``SUCCESS``, ``NONE``, ``FAILED:...``).
    """

    method: str
    path: str
    headers: Mapping[str, str | Sequence[str]]
    client_dn: str = ""
    client_verify: str = "NONE"
    request_id: str = ""


@dataclass(frozen=True)
class TokenInfo:
    """What introspection says about a PSC access token. ``exp`` is epoch seconds (0 = unknown).

    ``client_id`` (RFC 7662), ``authorized_party`` (``azp``) and ``audiences`` (``aud``) say which client the
    token was issued to; ``issuer`` is its ``iss``."""

    active: bool
    id_nat: str = ""
    exp: float = 0.0
    structure_id: str = ""
    client_id: str = ""
    authorized_party: str = ""
    audiences: tuple[str, ...] = ()
    issuer: str = ""

    @classmethod
    def from_introspection(cls, answer, structure_id: str = "") -> "TokenInfo":
        """From a ``drimbox.psc.model.Introspection`` (idNat = SubjectNameID, else sub)."""
        raw = answer.raw or {}
        aud = raw.get("aud")
        audiences = (aud,) if isinstance(aud, str) else tuple(a for a in aud or () if isinstance(a, str))
        azp = raw.get("azp")
        iss = raw.get("iss")
        return cls(
            active=bool(answer.active),
            id_nat=answer.subject_name_id or answer.sub,
            exp=float(answer.exp or 0),
            structure_id=structure_id,
            client_id=answer.client_id,
            authorized_party=azp if isinstance(azp, str) else "",
            audiences=audiences,
            issuer=iss if isinstance(iss, str) else "",
        )

    def issued_to(self) -> str | None:
        """The client the token was issued to: ``client_id``, else ``azp``, else a single ``aud``; None when
        ``client_id`` and ``azp`` name different clients (such a token is not trusted)."""
        if self.client_id and self.authorized_party and self.client_id != self.authorized_party:
            return None
        if self.client_id or self.authorized_party:
            return self.client_id or self.authorized_party
        return self.audiences[0] if len(self.audiences) == 1 else ""


@dataclass(frozen=True)
class PublishedManifest:
    """A KOS this box published: what it covers and whether it still stands."""

    kos_uid: str
    study_uid: str
    series: Mapping[str, Mapping[str, str]]  # series UID -> {SOP instance UID: SOP class UID}
    withdrawn: bool = False
    rejected_instances: frozenset[str] = frozenset()  # those this KOS lists that were rejected since
    rejected_in_study: frozenset[str] = frozenset()  # every instance of the study rejected so far


class PeerFacts(Protocol):
    """What the decision needs from the outside world; the Orthanc adapter implements it (cached).

    ``token_issuer``: the configured PSC issuer (empty: not checked, unit tests only);
    ``accepted_token_clients``: PSC client ids accepted (empty: any client of that issuer)."""

    client_certificate_required: bool
    token_issuer: str
    accepted_token_clients: frozenset[str]

    def introspect(self, token: str) -> TokenInfo | None: ...

    def manifest(self, kos_uid: str) -> PublishedManifest | None: ...

    def stored_transfer_syntax(self, study: str, series: str, instance: str | None) -> str: ...

    def is_whitelisted_operator_dn(self, dn: str) -> bool: ...

    # Optional: ``stored_instance_uids(study, series_or_None) -> Collection[str] | None``. When the facts
    # object has it and Orthanc holds instances the KOS does not cover (or rejected ones) in the requested
    # study or series, the decision is ``curated`` (see instances_to_send). Without it, every study- and
    # series-level request is forwarded to Orthanc as it is.


@dataclass(frozen=True)
class Resource:
    """A parsed WADO-RS retrieve path."""

    level: str  # study | series | instance | frames
    study: str
    series: str = ""
    instance: str = ""
    frames: str = ""
    metadata: bool = False

    @property
    def action(self) -> str:
        return f"retrieve-{self.level}" + ("-metadata" if self.metadata else "")

    @property
    def path(self) -> str:
        """The canonical WADO-RS path (no leading slash)."""
        parts = [f"studies/{self.study}"]
        for name, value in (("series", self.series), ("instances", self.instance), ("frames", self.frames)):
            if value:
                parts.append(f"{name}/{value}")
        return "/".join(parts) + ("/metadata" if self.metadata else "")


@dataclass(frozen=True)
class Decision:
    allow: bool
    status: int
    reason: str
    transfer_syntax: str | None = None
    orthanc_accept: str | None = None
    audit: dict = field(default_factory=dict)
    headers: dict = field(default_factory=dict)
    resource: Resource | None = None
    kos_uid: str = ""
    curated: bool = False

    @property
    def auth_request_status(self) -> int:
        """Status for nginx's ``auth_request`` subrequest, which only understands 2xx, 401 and 403 (any other
        status becomes a 500). The real status travels in ``X-Drimbox-Status`` (auth_request_headers)."""
        if self.allow:
            return 200
        return 401 if self.status == 401 else 403

    def auth_request_headers(self) -> dict[str, str]:
        """Headers of the subrequest answer, for ``auth_request_set $x $upstream_http_x_drimbox_...``:
        the real status and reason, and on allow the Accept to put on the request forwarded to Orthanc."""
        headers = {"X-Drimbox-Status": str(self.status), "X-Drimbox-Reason": self.reason}
        if self.orthanc_accept:
            headers["X-Drimbox-Accept"] = self.orthanc_accept
        if self.transfer_syntax:
            headers["X-Drimbox-Transfer-Syntax"] = self.transfer_syntax
        if self.target:
            headers["X-Drimbox-Target"] = self.target
        return headers

    @property
    def target(self) -> str:
        """The Orthanc URI nginx forwards an allowed request to, built from the parsed resource (never from the
        raw path): Orthanc's DICOMweb, or the curated retrieve when Orthanc holds more than the KOS lists."""
        if not self.allow or self.resource is None:
            return ""
        path = self.resource.path
        return f"{CURATED_PREFIX}{self.kos_uid}/{path}" if self.curated else f"/dicom-web/{path}"

    def json_body(self) -> str:
        """The JSON error body of a denial (also fine for an allow, unused then)."""
        return json.dumps({"status": self.status, "error": self.reason})


class _Deny(Exception):
    def __init__(self, status: int, reason: str, headers: dict | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers or {}


def decide_peer_request(
    req: PeerRequest, facts: PeerFacts, *, hsts_max_age: int = 31536000, now: float | None = None
) -> Decision:
    """Decide one peer WADO-RS request. Pure apart from the calls on ``facts``; never raises."""
    now = time.time() if now is None else now
    return _decide(req, lambda context: _check(req, facts, now, context), hsts_max_age, now)


def refuse_unverified_certificate(req: PeerRequest, *, hsts_max_age: int = 31536000,
                                  now: float | None = None) -> Decision:
    """The audited 403 for a caller whose TLS client certificate nginx could not verify (unknown CA, expired,
    revoked): nginx answers such a request itself (error 495), so it never reaches the decision."""
    def refuse(context: dict) -> Resource:
        raise _Deny(403, f"TLS client certificate not verified: {req.client_verify or 'FAILED'}"[:200])

    return _decide(req, refuse, hsts_max_age, time.time() if now is None else now)


def _decide(req: PeerRequest, check: Callable[[dict], Resource], hsts_max_age: int, now: float) -> Decision:
    context: dict[str, str] = {}
    resource: Resource | None = None
    outcome: tuple[str | None, str | None]
    extra: dict[str, str]
    try:
        resource = check(context)
        outcome = context.pop("_transfer_syntax", None), context.pop("_orthanc_accept")
        status, reason, extra = 200, "allowed", {}
        if context.get("_curated"):
            reason = "allowed: only the instances this KOS lists"
    except _Deny as deny:
        outcome = (None, None)
        status, reason, extra = deny.status, deny.reason, deny.headers
    except Exception as error:  # a failing fact (PSC down, store error): deny, say so, never allow
        outcome = (None, None)
        status, reason, extra = 503, f"access check unavailable: {type(error).__name__}: {error}", {"Retry-After": "30"}
    headers = {"Strict-Transport-Security": f"max-age={hsts_max_age}"}
    headers.update(extra)
    if status != 200:
        headers["Content-Type"] = "application/json"
    event = AuditEvent(
        when=datetime.fromtimestamp(now, timezone.utc),
        entry_point=ENTRY_WADO_RS,
        action=resource.action if resource else f"{req.method.lower()} {_strip_query(req.path)}"[:200],
        outcome_status=status,
        reason=reason,
        caller_dn=req.client_dn,
        professional_id=context.get("id_nat", ""),
        structure_id=context.get("structure_id", ""),
        kos_uid=context.get("kos_uid", ""),
        study_uid=resource.study if resource else "",
        series_uid=resource.series if resource else "",
        instance_uid=resource.instance if resource else "",
        request_id=req.request_id,
    )
    return Decision(
        allow=status == 200,
        status=status,
        reason=reason,
        transfer_syntax=outcome[0],
        orthanc_accept=outcome[1],
        audit=event.to_row(),
        headers=headers,
        resource=resource if status == 200 else None,
        kos_uid=context.get("kos_uid", ""),
        curated=status == 200 and bool(context.get("_curated")),
    )


def _check(req: PeerRequest, facts: PeerFacts, now: float, context: dict) -> Resource:
    if req.method.upper() != "GET":
        raise _Deny(405, f"method {req.method} not allowed: only GET", {"Allow": "GET"})
    if facts.client_certificate_required:
        _check_client_certificate(req, facts)
    resource = parse_resource(req.path)
    token = _bearer_token(req.headers)
    kos_uid = _single_header(req.headers, KOS_HEADER)
    if not kos_uid:
        raise _Deny(400, "missing KOS-SOPInstanceUID header")
    if not _is_uid(kos_uid):
        raise _Deny(400, "malformed KOS-SOPInstanceUID header")
    context["kos_uid"] = kos_uid
    accept_values = [v for v in _header_values(req.headers, "accept") if v.strip()]
    accepted = parse_accept(accept_values)
    if accept_values and not accepted:
        raise _Deny(400, "Accept has no well-formed item (media type, parameters, q from 0 to 1 with at most"
                         " 3 decimals)")
    if resource.metadata and not accepts_metadata(accepted):
        raise _Deny(400, "Accept offers no application/dicom+json for metadata")
    frames = resource.level == "frames"
    if not resource.metadata and accepted and not usable_for(accepted, frames=frames):
        raise _Deny(400, "Accept offers no usable media type for this resource")

    info = _valid_token(facts.introspect(token), facts, now)
    context["id_nat"] = info.id_nat
    context["structure_id"] = info.structure_id

    manifest = facts.manifest(kos_uid)
    if manifest is None:
        raise _Deny(404, "unknown KOS")
    if manifest.withdrawn:
        raise _Deny(404, "KOS withdrawn")
    if manifest.study_uid != resource.study:
        raise _Deny(404, "study not covered by this KOS")
    if resource.series:
        instances = manifest.series.get(resource.series)
        if instances is None:
            raise _Deny(404, "series not covered by this KOS")
        if resource.instance:
            if resource.instance in manifest.rejected_instances:
                raise _Deny(410, "instance rejected since publication")
            if resource.instance not in instances:
                raise _Deny(404, "instance not covered by this KOS")
    if not resource.instance:
        lookup = getattr(facts, "stored_instance_uids", None)
        stored = lookup(resource.study, resource.series or None) if lookup else None
        plan = None if stored is None else instances_to_send(manifest, stored, resource)
        if plan is not None:
            if not plan:
                raise _Deny(404, f"Orthanc holds nothing of this {resource.level} that the KOS still covers")
            context["_curated"] = "1"

    if resource.metadata:
        context["_orthanc_accept"] = DICOM_JSON_ACCEPT
        return resource
    stored = facts.stored_transfer_syntax(resource.study, resource.series, resource.instance or None)
    chosen = choose_transfer_syntax(accepted, stored, transcodable=ORTHANC_LOSSLESS_TRANSCODABLE, frames=frames)
    if chosen is None:
        raise _Deny(400, f"no acceptable transfer syntax can be produced from {stored}")
    context["_transfer_syntax"] = chosen
    context["_orthanc_accept"] = orthanc_accept_header(chosen, stored, frames=frames)
    return resource


def _check_client_certificate(req: PeerRequest, facts: PeerFacts) -> None:
    if req.client_verify != "SUCCESS" or not req.client_dn:
        detail = "none presented" if req.client_verify in ("", "NONE") else req.client_verify
        raise _Deny(403, f"a TLS client certificate verified against the IGC-Sante roots is required ({detail})"[:200])
    if not facts.is_whitelisted_operator_dn(req.client_dn):
        raise _Deny(403, "client certificate DN is not an operator DN (DNCertificatOperateur) of the whitelist"
                         " in force")


def _valid_token(info: TokenInfo | None, facts: PeerFacts, now: float) -> TokenInfo:
    invalid = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    if info is None or not info.active:
        raise _Deny(401, "access token is not active", invalid)
    if not info.exp:
        raise _Deny(401, "access token has no expiry", invalid)
    if now >= info.exp:
        raise _Deny(401, "access token expired", invalid)
    if facts.token_issuer and info.issuer.rstrip("/") != facts.token_issuer.rstrip("/"):
        raise _Deny(401, "access token not issued by the configured Pro Sante Connect issuer", invalid)
    client = info.issued_to()
    if client is None:
        raise _Deny(401, "access token names two different clients (client_id and azp)", invalid)
    if facts.accepted_token_clients and client not in facts.accepted_token_clients:
        raise _Deny(401, "access token issued to a client this box does not accept", invalid)
    return info


def covered_instances(manifest: PublishedManifest, resource: Resource) -> list[tuple[str, str]]:
    """The (series, instance) pairs of a study or series the KOS lists and that were not rejected since."""
    series_uids = [resource.series] if resource.series else list(manifest.series)
    return [(series, instance) for series in series_uids for instance in manifest.series.get(series, {})
            if instance not in manifest.rejected_instances]


def instances_to_send(manifest: PublishedManifest, stored, resource: Resource) -> list[tuple[str, str]] | None:
    """For a study or series request: None when Orthanc holds nothing there that the KOS does not still cover
    (forward to Orthanc's DICOMweb as it is); otherwise the (series, instance) pairs to send, in the KOS's
    order: those the KOS lists, not rejected since, that Orthanc holds."""
    covered = covered_instances(manifest, resource)
    stored = set(stored)
    if stored <= {instance for _, instance in covered}:
        return None
    return [(series, instance) for series, instance in covered if instance in stored]


def parse_resource(path: str) -> Resource:
    """Parse ``studies/{s}[/series/{se}[/instances/{i}[/frames/{f}]]][/metadata]``; raise _Deny otherwise."""
    parts = [p for p in _strip_query(path).strip("/").split("/")]
    metadata = len(parts) > 1 and parts[-1] == "metadata"
    if metadata:
        parts = parts[:-1]
    keys = parts[0::2]
    values = parts[1::2]
    shapes = (["studies"], ["studies", "series"], ["studies", "series", "instances"],
              ["studies", "series", "instances", "frames"])
    if keys not in shapes or len(values) != len(keys) or (metadata and keys[-1] == "frames"):
        raise _Deny(404, "not a WADO-RS retrieve resource of this box")
    uids = values[:3]
    if not all(_is_uid(uid) for uid in uids):
        raise _Deny(400, "malformed UID in path")
    if keys[-1] == "frames" and not _FRAMES.match(values[3]):
        raise _Deny(400, "malformed frame list in path")
    level = {1: "study", 2: "series", 3: "instance", 4: "frames"}[len(keys)]
    padded = values + [""] * (4 - len(values))
    return Resource(level, padded[0], padded[1], padded[2], padded[3], metadata)


def _bearer_token(headers: Mapping[str, str | Sequence[str]]) -> str:
    invalid_request = {"WWW-Authenticate": 'Bearer error="invalid_request"'}
    values = _header_values(headers, "authorization")
    if not values:
        raise _Deny(400, "missing Authorization header", invalid_request)
    if len(values) > 1:
        raise _Deny(400, "several Authorization headers", invalid_request)
    scheme, _, token = values[0].strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _Deny(400, "Authorization must be 'Bearer <PSC access token>'", invalid_request)
    return token


def _header_values(headers: Mapping[str, str | Sequence[str]], name: str) -> list[str]:
    value = headers.get(name)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def _single_header(headers: Mapping[str, str | Sequence[str]], name: str) -> str:
    values = [v.strip() for v in _header_values(headers, name) if v.strip()]
    if len(set(values)) > 1:
        raise _Deny(400, f"several different {name} headers")
    return values[0] if values else ""


def _is_uid(text: str) -> bool:
    return len(text) <= 64 and bool(_UID.match(text))


def _strip_query(path: str) -> str:
    return path.split("?", 1)[0]
