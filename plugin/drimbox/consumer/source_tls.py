"""The source box's server certificate, checked against the whitelist before any image moves.

Orthanc's DICOMweb client (C++) verifies the source's chain against ``HttpsCACertificates`` but cannot compare
the certificate's subject DN with anything. So before a retrieval, Python makes its own TLS handshake to the
same host and port (same CA bundle, hostname checked, the box's client certificate presented) and compares the
server certificate's subject DN with the ``DNCertificatOperateur`` of the whitelist domain whose ``db`` is that
host. Only then does Orthanc connect. Between the two connections an attacker would still need a certificate
chaining to the same CA for that host name, which Orthanc's own verification demands.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography import x509

from drimbox.crypto.dn import same_dn
from drimbox.trust.whitelist import Domain, domains_with_db_host, split_host

OK, WRONG_DN, UNVERIFIED, UNREACHABLE = "ok", "wrong_dn", "unverified", "unreachable"


@dataclass(frozen=True)
class SourceCheck:
    outcome: str  # ok | wrong_dn | unverified (chain or host name) | unreachable
    host: str
    presented_dn: str = ""
    listed_dn: str = ""
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == OK


def server_certificate(host: str, port: int, context: ssl.SSLContext, timeout: float) -> x509.Certificate:
    """The leaf certificate ``host:port`` presents, after ``context`` verified its chain and host name."""
    with socket.create_connection((host, port), timeout=timeout) as raw:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            der = tls.getpeercert(binary_form=True)
    if not der:
        raise ssl.SSLError("the server presented no certificate")
    return x509.load_der_x509_certificate(der)


def check_source(host: str, domains: Sequence[Domain], context: ssl.SSLContext, *, timeout: float = 10.0,
                 fetch: Callable[[str, int, ssl.SSLContext, float], x509.Certificate] = server_certificate
                 ) -> SourceCheck:
    """Whether ``host`` (host[:port] of a checked Retrieve URL) proves it is the listed operator's ``db`` host."""
    listed = [d.operator_dn for d in domains_with_db_host(domains, host) if d.operator_dn]
    if not listed:
        return SourceCheck(WRONG_DN, host, detail="the whitelist names no operator certificate for this host")
    name, port = split_host(host)
    try:
        cert = fetch(name, port or 443, context, timeout)
    except ssl.SSLCertVerificationError as error:
        return SourceCheck(UNVERIFIED, host, detail=error.verify_message or str(error))
    except (OSError, ssl.SSLError, ValueError) as error:
        return SourceCheck(UNREACHABLE, host, detail=f"{type(error).__name__}: {error}")
    presented = cert.subject.rfc4514_string()
    for dn in listed:
        try:
            if same_dn(presented, dn):
                return SourceCheck(OK, host, presented, dn)
        except ValueError:  # an unparsable DN in the list matches nothing
            continue
    return SourceCheck(WRONG_DN, host, presented, listed[0],
                       detail=f"certificate DN {presented!r}, whitelist DNCertificatOperateur {listed[0]!r}")
