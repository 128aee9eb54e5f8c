"""The signed DRIM-M whitelist ("liste blanche"): parse, verify, keep the last valid one, answer host/DN checks.

Acceptance (docs/security.md, docs/conformance.md): XAdES signature and digests valid over the whole list,
signer chained to a configured root, signer CN and OU as configured, within validity, not revoked (CRL).
Anything else is refused and the list in force stays.

The domains are read from what the signature covers (the digested node-set, re-parsed), never from the
document as received: text hidden in a subtracted ds:Signature, comments or processing instructions cannot
change a ``db`` host or an operator DN. A list holding any other signature element, a DOCTYPE, several list
roots, or a field with markup inside is refused outright.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.x509.oid import NameOID
from lxml import etree

from drimbox.crypto.dn import same_dn
from drimbox.crypto.dsig import SignatureError, key_info_certificates, parse_xml
from drimbox.crypto.xmlsig import verify_xades
from drimbox.trust.crl import RevocationError, check_path, distribution_points, fetch_bytes, load_crls

ROOT_NAME = "ListeBlancheDRIM-M"
DEFAULT_SIGNER_CN = "Liste Blanche DRIM-M"
DEFAULT_SIGNER_OU = "318751275100020"
_DS = "http://www.w3.org/2000/09/xmldsig#"


class WhitelistError(ValueError):
    pass


@dataclass(frozen=True)
class Domain:
    id: str
    db: str  # source host name (host[:port]) serving WADO-RS
    vi: str  # viewer host name
    name: str = ""
    operator_dn: str = ""  # subject DN of the operator's TLS client certificate
    updated_at: str = ""


@dataclass(frozen=True)
class Whitelist:
    generated_at: dt.datetime | None
    version_format: str
    domains: list[Domain]


@dataclass
class WhitelistVerdict:
    valid: bool
    reason: str
    signer: str = ""  # RFC 4514 subject of the signer certificate
    generated_at: dt.datetime | None = None
    domains: list[Domain] = field(default_factory=list)
    revocation_checked: bool = False

    def to_json(self) -> dict:
        return {
            "valid": self.valid,
            "reason": self.reason,
            "signer": self.signer,
            "generated_at": self.generated_at.isoformat() if self.generated_at else None,
            "domains": [asdict(domain) for domain in self.domains],
            "revocation_checked": self.revocation_checked,
        }


# --- parsing -------------------------------------------------------------------------------------------------


def _local(node) -> str:
    return etree.QName(node).localname if isinstance(node.tag, str) else ""


def _field(element: etree._Element, name: str) -> str:
    """Text of the single child ``name`` ("" when absent); a field is plain text, nothing else inside."""
    found = [child for child in element if _local(child) == name]
    if not found:
        return ""
    if len(found) > 1:
        raise WhitelistError(f"{_local(element)} has {len(found)} {name} elements")
    child = found[0]
    if len(child):
        raise WhitelistError(f"{_local(element)}/{name} holds markup (element, comment or processing instruction)")
    return " ".join((child.text or "").split())


def parse_datetime(text: str) -> dt.datetime | None:
    """xs:dateTime or xs:date; naive values are taken as UTC. None when empty or unparseable."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def parse_whitelist(xml: bytes | etree._Element) -> Whitelist:
    """Read a list whatever its namespace (elements are matched by local name); no signature check.

    Domains are the ``ListeDomaines/Domaine`` children of the root; ``verify_whitelist`` passes only what the
    signature covered. Refused: another ``ListeBlancheDRIM-M`` or ``Domaine`` elsewhere, repeated or
    structured fields.
    """
    root = parse_xml(bytes(xml)) if isinstance(xml, (bytes, bytearray)) else xml
    if _local(root) != ROOT_NAME:
        raise WhitelistError(f"not a DRIM-M whitelist: document element is {_local(root)!r}, expected {ROOT_NAME}")
    containers = [child for child in root if _local(child) == "ListeDomaines"]
    if len(containers) > 1:
        raise WhitelistError(f"{len(containers)} ListeDomaines elements")
    elements = [child for child in containers[0] if _local(child) == "Domaine"] if containers else []
    placed = {id(element) for element in elements}
    for element in root.iter():
        name = _local(element)
        if (name == ROOT_NAME and element is not root) or (name == "Domaine" and id(element) not in placed):
            raise WhitelistError(f"a {name} element outside {ROOT_NAME}/ListeDomaines")
    domains = [
        Domain(
            id=_field(element, "Identifiant"),
            db=_field(element, "db"),
            vi=_field(element, "vi"),
            name=_field(element, "Denomination"),
            operator_dn=_field(element, "DNCertificatOperateur"),
            updated_at=_field(element, "DateMAJ"),
        )
        for element in elements
    ]
    return Whitelist(
        generated_at=parse_datetime(_field(root, "DateDeGeneration")),
        version_format=root.get("versionFormat", ""),
        domains=domains,
    )


# --- verification --------------------------------------------------------------------------------------------


def _name_values(cert: x509.Certificate, oid) -> list[str]:
    return [str(attribute.value) for attribute in cert.subject.get_attributes_for_oid(oid)]


def verify_whitelist(
    xml: bytes,
    trust_anchors: Sequence[x509.Certificate],
    *,
    crl: bytes | Sequence[bytes] | None = None,
    now: dt.datetime | None = None,
    signer_cn: str = DEFAULT_SIGNER_CN,
    signer_ou: str = DEFAULT_SIGNER_OU,
) -> WhitelistVerdict:
    """Whether the list is acceptable; never raises for a bad list (the verdict says why).

    Without ``crl`` everything but revocation is checked and ``revocation_checked`` is False.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    try:
        root = parse_xml(xml)
        if _local(root) != ROOT_NAME:
            raise WhitelistError(f"not a DRIM-M whitelist: document element is {_local(root)!r}")
    except (SignatureError, WhitelistError) as error:
        return WhitelistVerdict(False, f"unreadable list: {error}")
    try:
        verified = verify_xades(root, trust_anchors, now=now)
        if verified.reference_uris != [""]:
            raise SignatureError("it does not cover the whole list (one URI=\"\" data reference expected)")
        whitelist = parse_whitelist(verified.signed_node(""))
    except SignatureError as error:
        return WhitelistVerdict(False, f"signature refused: {error}")
    except WhitelistError as error:
        return WhitelistVerdict(False, f"unreadable list: {error}")
    signer = verified.cert.subject.rfc4514_string()
    refused = lambda reason: WhitelistVerdict(False, reason, signer, whitelist.generated_at)  # noqa: E731
    if signer_cn not in _name_values(verified.cert, NameOID.COMMON_NAME):
        return refused(f"signer CN is not {signer_cn!r}: {signer}")
    if signer_ou not in _name_values(verified.cert, NameOID.ORGANIZATIONAL_UNIT_NAME):
        return refused(f"signer OU is not {signer_ou!r}: {signer}")
    revocation_checked = False
    if crl is not None:
        try:
            check_path(verified.path, [crl] if isinstance(crl, (bytes, bytearray)) else list(crl), now=now)
        except RevocationError as error:
            return refused(f"revocation: {error}")
        revocation_checked = True
    reason = "valid" if revocation_checked else "valid (revocation not checked: no CRL given)"
    return WhitelistVerdict(True, reason, signer, whitelist.generated_at, whitelist.domains, revocation_checked)


# --- host and DN checks ----------------------------------------------------------------------------------------


def split_host(value: str) -> tuple[str, int | None]:
    """``(hostname, port)`` of ``host``, ``host:port``, ``[v6]:port`` or a URL; port None when absent."""
    value = value.strip()
    parts = urlsplit(value if "://" in value else f"//{value}")
    try:
        port = parts.port
    except ValueError:
        port = None
    host = (parts.hostname or "").rstrip(".").lower()
    if parts.scheme == "https" and port == 443 or parts.scheme == "http" and port == 80:
        port = None
    return host, port


def host_matches(candidate: str, entry: str) -> bool:
    """An entry without a port accepts the default HTTPS port only; with a port, exactly that port."""
    host, port = split_host(candidate)
    entry_host, entry_port = split_host(entry)
    if not host or host != entry_host:
        return False
    return (port or 443) == (entry_port or 443)


def domains_with_db_host(domains: Sequence[Domain], host: str) -> list[Domain]:
    return [domain for domain in domains if domain.db and host_matches(host, domain.db)]


def domains_with_operator_dn(domains: Sequence[Domain], dn: str) -> list[Domain]:
    return [domain for domain in domains if domain.operator_dn and same_dn(dn, domain.operator_dn)]


# --- the list in force ------------------------------------------------------------------------------------------


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment else None


class WhitelistKeeper:
    """Holds the list in force and refreshes it; a refused list never replaces a valid one.

    ``fetch(source)`` and ``crl_fetch(url)`` return bytes (defaults read http(s) URLs, file URLs and paths).
    CRLs come from ``crl_urls`` or else from the signer certificate's distribution points, and are cached
    until their nextUpdate (or ``crl_max_age``). ``on_accept(xml, verdict)`` persists an accepted list;
    give the persisted bytes back as ``last_valid`` at the next start.
    """

    def __init__(
        self,
        source: str,
        trust_anchors: Sequence[x509.Certificate],
        *,
        fetch: Callable[[str], bytes] = fetch_bytes,
        crl_fetch: Callable[[str], bytes] = fetch_bytes,
        crl_urls: Sequence[str] = (),
        clock: Callable[[], dt.datetime] = _utc_now,
        last_valid: bytes | None = None,
        on_accept: Callable[[bytes, WhitelistVerdict], None] | None = None,
        signer_cn: str = DEFAULT_SIGNER_CN,
        signer_ou: str = DEFAULT_SIGNER_OU,
        require_revocation_check: bool = True,
        crl_max_age: dt.timedelta = dt.timedelta(hours=24),
    ) -> None:
        self.source = source
        self.trust_anchors = list(trust_anchors)
        self._fetch = fetch
        self._crl_fetch = crl_fetch
        self.crl_urls = list(crl_urls)
        self._clock = clock
        self._on_accept = on_accept
        self.signer_cn = signer_cn
        self.signer_ou = signer_ou
        self.require_revocation_check = require_revocation_check
        self.crl_max_age = crl_max_age
        self._lock = threading.RLock()
        # url -> (bytes, fetched at). Not a TTL cache: past crl_max_age an entry is still the fallback when the
        # fetch fails, until the CRL's own nextUpdate.
        self._crl_cache: dict[str, tuple[bytes, dt.datetime]] = {}
        self.current: WhitelistVerdict | None = None
        self.in_force_since: dt.datetime | None = None
        self.last_attempt: dt.datetime | None = None
        self.last_result: str = ""
        self.last_refusal_reason: str = ""
        self.last_refusal_at: dt.datetime | None = None
        self.last_crl_error: str = ""
        if last_valid:
            self._restore(last_valid)

    def _restore(self, xml: bytes) -> None:
        # The stored list was accepted before; re-check signature, chain and names (storage is not trusted),
        # revocation is re-established at the next refresh.
        verdict = self._verify(xml, crl=None)
        if verdict.valid:
            self.current, self.in_force_since = verdict, self._clock()
        else:
            self._refuse(f"stored list: {verdict.reason}")

    def _verify(self, xml: bytes, crl) -> WhitelistVerdict:
        return verify_whitelist(xml, self.trust_anchors, crl=crl, now=self._clock(),
                                signer_cn=self.signer_cn, signer_ou=self.signer_ou)

    def _refuse(self, reason: str) -> None:
        self.last_result = "refused"
        self.last_refusal_reason = reason
        self.last_refusal_at = self._clock()

    def _crls_for(self, xml: bytes) -> list[bytes]:
        urls = list(self.crl_urls)
        if not urls:
            signature = parse_xml(xml).find(f"{{{_DS}}}Signature")
            certs = key_info_certificates(signature) if signature is not None else []
            urls = [url for cert in certs for url in distribution_points(cert)]
        crls, errors = [], []
        now = self._clock()
        for url in dict.fromkeys(urls):
            cached = self._crl_cache.get(url)
            if cached and now - cached[1] < self.crl_max_age and not _crl_stale(cached[0], now):
                crls.append(cached[0])
                continue
            try:
                data = self._crl_fetch(url)
            except Exception as error:  # network, file or HTTP errors all mean "not fetched"
                errors.append(f"{url}: {error}")
                if cached and not _crl_stale(cached[0], now):
                    crls.append(cached[0])
                continue
            self._crl_cache[url] = (data, now)
            crls.append(data)
        self.last_crl_error = "; ".join(errors)
        return crls

    def refresh(self) -> WhitelistVerdict:
        """Fetch and check the list at ``source``; accept it or keep the one in force; this attempt's verdict."""
        with self._lock:
            self.last_attempt = self._clock()
            try:
                xml = self._fetch(self.source)
            except Exception as error:
                verdict = WhitelistVerdict(False, f"unreadable list: cannot fetch {self.source}: {error}")
                self._refuse(verdict.reason)
                return verdict
            verdict = self._verify(xml, crl=None)
            if verdict.valid:
                crls = self._crls_for(xml)
                if crls:
                    verdict = self._verify(xml, crl=crls)
                elif self.require_revocation_check:
                    detail = f" ({self.last_crl_error})" if self.last_crl_error else ""
                    verdict = WhitelistVerdict(False, f"revocation: no CRL available{detail}", verdict.signer,
                                               verdict.generated_at)
            if verdict.valid and self.current and self.current.generated_at and verdict.generated_at and (
                verdict.generated_at < self.current.generated_at
            ):
                verdict = WhitelistVerdict(
                    False, f"older than the list in force (generated {verdict.generated_at.isoformat()})",
                    verdict.signer, verdict.generated_at,
                )
            if not verdict.valid:
                self._refuse(verdict.reason)
                return verdict
            self.current, self.in_force_since, self.last_result = verdict, self._clock(), "accepted"
            if self._on_accept:
                self._on_accept(xml, verdict)
            return verdict

    @property
    def domains(self) -> list[Domain]:
        current = self.current
        return list(current.domains) if current else []

    def is_trusted_db_host(self, host: str) -> bool:
        """Whether ``host`` (host[:port], or a Retrieve URL) is the ``db`` host of a domain of the list in force."""
        return bool(domains_with_db_host(self.domains, host))

    def is_trusted_operator_dn(self, dn: str) -> bool:
        """Whether ``dn`` (RFC 4514/2253 as nginx gives it, any order) is an operator DN of the list in force."""
        return bool(dn) and bool(domains_with_operator_dn(self.domains, dn))

    def status(self) -> dict:
        current = self.current
        return {
            "source": self.source,
            "in_force": current is not None,
            "in_force_since": _iso(self.in_force_since),
            "generated_at": _iso(current.generated_at) if current else None,
            "signer": current.signer if current else "",
            "domain_count": len(current.domains) if current else 0,
            "revocation_checked": current.revocation_checked if current else False,
            "last_attempt": _iso(self.last_attempt),
            "last_result": self.last_result,
            "last_refusal_reason": self.last_refusal_reason,
            "last_refusal_at": _iso(self.last_refusal_at),
            "last_crl_error": self.last_crl_error,
        }


def _crl_stale(data: bytes, now: dt.datetime) -> bool:
    try:
        return any(crl.next_update_utc is not None and crl.next_update_utc < now for crl in load_crls(data))
    except RevocationError:
        return True


def keeper_from_settings(settings, state_path: str | Path, **options) -> WhitelistKeeper:
    """A keeper for ``WhitelistSettings`` whose accepted lists are saved to (and restored from) ``state_path``."""
    from drimbox.crypto.keys import load_certificate_chain

    if not settings.source:
        raise WhitelistError("DRIMbox.Whitelist.Source is empty: set the URL or path of the signed list")
    if not settings.trust_anchor:
        raise WhitelistError("DRIMbox.Whitelist.TrustAnchor is empty: set the PEM file of the IGC-Santé root")
    anchors = load_certificate_chain(settings.trust_anchor)
    state = Path(state_path)

    def save(xml: bytes, verdict: WhitelistVerdict) -> None:
        state.parent.mkdir(parents=True, exist_ok=True)
        tmp = state.with_name(state.name + ".tmp")
        tmp.write_bytes(xml)
        os.replace(tmp, state)

    options.setdefault("crl_urls", settings.crl_urls)
    options.setdefault("signer_cn", settings.signer_cn)
    options.setdefault("signer_ou", settings.signer_ou)
    options.setdefault("require_revocation_check", settings.require_revocation_check)
    return WhitelistKeeper(settings.source, anchors, last_valid=state.read_bytes() if state.exists() else None,
                           on_accept=save, **options)
