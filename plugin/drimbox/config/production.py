"""What a production configuration must not keep from the demo: simulators, the demo whitelist, the test PKI.

``DRIMbox.Deployment: "production"`` (written by ``drimbox install``) turns these checks on, at start-up and in
``drimbox config check``. Each problem is one sentence naming the key and what to do.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.x509.oid import NameOID

from drimbox.crypto.keys import KeyLoadError, load_certificate_chain
from drimbox.crypto.pki import TEST_ORGANISATION
from drimbox.psc.settings import PscSettings

if TYPE_CHECKING:
    from drimbox.config import Settings

DEPLOYMENTS = ("demo", "production")
PRODUCTION = "production"
# drimbox.samples.whitelist writes the demo lists in this namespace; the national list never uses it.
DEMO_WHITELIST_NAMESPACE = b"urn:drimbox:test:liste-blanche-drim-m"
DEMO_OID_ROOT = "1.2.826.0.1.3680043.8.498.77"


def is_local_url(url: str) -> bool:
    """True for a URL whose host is this machine (where the simulators run), or an unusable URL."""
    host = (urlsplit(url).hostname or "").lower()
    if not host or host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def _organisations(name: x509.Name) -> list[str]:
    return [str(a.value) for a in name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]


def test_pki_certificate(path: str) -> str:
    """The subject of the first certificate of ``path`` issued by (or being) the box's test PKI, else ""."""
    try:
        certificates = load_certificate_chain(path)
    except KeyLoadError:
        return ""
    for certificate in certificates:
        if TEST_ORGANISATION in _organisations(certificate.issuer) + _organisations(certificate.subject):
            return certificate.subject.rfc4514_string()
    return ""


def _pkcs12_test_pki(path: str, password_file: str) -> str:
    from drimbox.crypto.keys import load_key_and_cert

    try:
        _, leaf, chain = load_key_and_cert(path, "", password_file)
    except KeyLoadError:
        return ""
    for certificate in (leaf, *chain):
        if TEST_ORGANISATION in _organisations(certificate.issuer) + _organisations(certificate.subject):
            return certificate.subject.rfc4514_string()
    return ""


def _certificate_problems(key: str, path: str, password_file: str = "") -> list[str]:
    if not path:
        return [f"DRIMbox.{key} is empty: name the structure's IGC-Santé certificate file"]
    if not Path(path).is_file():
        return [f"DRIMbox.{key} names a missing file: {path}"]
    data = Path(path).read_bytes()
    subject = test_pki_certificate(path) if b"-----BEGIN" in data else _pkcs12_test_pki(path, password_file)
    if subject:
        return [f"DRIMbox.{key} is a certificate of the box's test PKI ({subject}): use the structure's "
                f"IGC-Santé certificate"]
    return []


def _ca_problems(key: str, path: str, what: str) -> list[str]:
    if not path:
        return [f"DRIMbox.{key} is empty: name {what}"]
    if not Path(path).is_file():
        return [f"DRIMbox.{key} names a missing file: {path}"]
    subject = test_pki_certificate(path)
    if subject:
        return [f"DRIMbox.{key} holds the box's test PKI ({subject}): name {what}"]
    return []


def _whitelist_problems(settings: Settings) -> list[str]:
    source = settings.whitelist.source
    if not source:
        return ["DRIMbox.Whitelist.Source is empty: set the national whitelist's URL"]
    if "://" in source and not source.startswith("file://"):
        if is_local_url(source):
            return [f"DRIMbox.Whitelist.Source points at this machine ({source}): set the national whitelist's URL"]
        return []
    path = Path(source[len("file://"):] if source.startswith("file://") else source)
    try:
        head = path.read_bytes()[:4096]
    except OSError:
        return [f"DRIMbox.Whitelist.Source names a file that cannot be read: {path}"]
    if DEMO_WHITELIST_NAMESPACE in head:
        return [f"DRIMbox.Whitelist.Source is the demo whitelist ({path}): set the national whitelist's URL"]
    return []


def production_problems(settings: Settings) -> list[str]:
    """Everything that would make a production box talk to a simulator or trust the test PKI."""
    problems: list[str] = []
    identity = settings.identity
    if identity.oid_root == DEMO_OID_ROOT:
        problems.append(f"DRIMbox.Identity.OidRoot is the demo root {DEMO_OID_ROOT}: set the structure's own "
                        "registered OID root")
    for key, url in (("Identity.PublicDbUrl", identity.public_db_url),
                     ("Identity.PublicViewerUrl", identity.public_viewer_url)):
        if is_local_url(url) or not url.startswith("https://"):
            problems.append(f"DRIMbox.{key} is {url}: set the public https:// address of this box's entry")
    dmp = settings.dmp
    if not dmp.enabled:
        problems.append("DRIMbox.Dmp.Enabled is false: a production box registers its manifests in the DMP")
    if is_local_url(dmp.base_url):
        problems.append(f"DRIMbox.Dmp.BaseUrl points at a simulator on this machine ({dmp.base_url}): set the "
                        "national DMP endpoint")
    problems += _certificate_problems("Dmp.ClientCert", dmp.client_cert, dmp.client_key_password_file)
    problems += _certificate_problems("Dmp.SigningCert", dmp.signing_cert, dmp.signing_key_password_file)
    problems += _ca_problems("Dmp.CaBundle", dmp.ca_bundle, "the CAs of the DMP's server certificate")
    psc = settings.psc
    if psc.issuer == PscSettings.issuer or is_local_url(psc.issuer_url):
        problems.append(f"DRIMbox.Psc.Issuer points at the PSC simulator ({psc.issuer_url}): set \"production\" "
                        "(or \"sandbox\" on the test platform)")
    if psc.ca_bundle and test_pki_certificate(psc.ca_bundle):
        problems.append("DRIMbox.Psc.CaBundle holds the box's test PKI: leave it empty (system CAs) or name "
                        "the CAs of Pro Santé Connect")
    problems += _whitelist_problems(settings)
    problems += _ca_problems("Whitelist.TrustAnchor", settings.whitelist.trust_anchor, "the IGC-Santé root")
    problems += _ca_problems("PeerAccess.ClientCaFile", settings.peer_access.client_ca_file,
                             "the IGC-Santé CAs that issue peers' certificates")
    return problems
