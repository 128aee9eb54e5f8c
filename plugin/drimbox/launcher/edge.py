"""What nginx's entries send and accept: TLS suites, Content-Security-Policy per entry, refused headers."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

# TLS 1.2: forward secrecy (ECDHE) and AEAD only; TLS 1.3 suites are all AEAD.
TLS12_CIPHERS = ":".join((
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
))

# Headers that make Orthanc treat a request as another method; nginx refuses them and never forwards them.
METHOD_OVERRIDE_HEADERS = ("X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override")

_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.S)


def inline_script_hashes(index_html: Path) -> list[str]:
    """CSP hashes of the inline scripts of OHIF's index.html (it sets its public path inline)."""
    try:
        html = index_html.read_bytes()
    except OSError:
        return []
    return ["'sha256-" + base64.b64encode(hashlib.sha256(m.group(1)).digest()).decode() + "'"
            for m in _INLINE_SCRIPT.finditer(html)]


def content_security_policies(ohif_dir: Path) -> dict[str, str]:
    scripts = " ".join(inline_script_hashes(ohif_dir / "index.html"))
    return {
        # JSON and DICOM only: nothing may run or be framed.
        "db": "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        # OHIF: its bundles, web workers and WebAssembly codecs (blob: workers, eval in some bundles), styles it
        # injects at run time, images it draws into blob:/data: URLs; the box's pages use an inline <style>.
        "vi": ("default-src 'self'; "
               f"script-src 'self' 'unsafe-eval' 'wasm-unsafe-eval' {scripts}".rstrip() + "; "
               "worker-src 'self' blob:; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
               "font-src 'self' data:; connect-src 'self' data: blob:; media-src 'self' data: blob:; "
               "object-src 'none'; base-uri 'self'; frame-ancestors 'none'"),
        # Orthanc Explorer 1 (jQuery Mobile) and the operator pages use inline scripts and handlers.
        "admin": ("default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; "
                  "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; object-src 'none'; "
                  "base-uri 'self'; frame-ancestors 'self'"),
    }
