"""HTML of the simulator: the login page where a tester picks a professional, and small notices.

Stable element ids for headless browser tests: form ``psc-login-form``, one button ``login-<idNat>`` per
professional, ``cancel-login``.
"""

from __future__ import annotations

from html import escape
from typing import Any

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:52rem;color:#1d1d1b}
h1{font-size:1.4rem}.pro{display:block;width:100%;text-align:left;margin:.5rem 0;padding:.8rem 1rem;
border:1px solid #000091;border-radius:4px;background:#f5f5fe;cursor:pointer;font-size:1rem}
.pro:hover{background:#e3e3fd}.pro small{display:block;color:#555;margin-top:.2rem}
.banner{background:#fff4e5;border:1px solid #f0a020;padding:.5rem 1rem;border-radius:4px}
"""


def login_page(request_id: str, client_id: str, professionals: dict[str, dict[str, Any]], action: str) -> str:
    buttons = "\n".join(_button(prof) for prof in professionals.values())
    return f"""<!DOCTYPE html>
<html lang="fr"><head><meta charset="utf-8"><title>Pro Santé Connect (simulateur)</title>
<style>{_STYLE}</style></head>
<body>
<p class="banner">Simulateur Pro Santé Connect : aucune authentification réelle. Ne pas utiliser en production.</p>
<h1>Connexion à <span id="client-id">{escape(client_id)}</span></h1>
<p>Choisissez le professionnel de santé sous l'identité duquel vous connecter.</p>
<form id="psc-login-form" method="post" action="{escape(action)}">
<input type="hidden" name="request_id" value="{escape(request_id)}">
{buttons}
<button type="submit" id="cancel-login" name="cancel" value="1">Annuler</button>
</form>
</body></html>
"""


def _button(prof: dict[str, Any]) -> str:
    id_nat = prof["idNat"]
    lines = []
    for exercice in prof["exercices"]:
        specialty = f", savoir-faire {exercice['codeSavoirFaire']}" if exercice["codeSavoirFaire"] else ""
        for activity in exercice["activities"]:
            lines.append(f"profession {exercice['codeProfession']}{specialty} - {activity['raisonSocialeSite']} "
                         f"({activity['codeSecteurDactivite']})")
    details = "".join(f"<small>{escape(line)}</small>" for line in lines)
    label = f" - {escape(prof['label'])}" if prof.get("label") else ""
    return (f'<button type="submit" class="pro" id="login-{escape(id_nat)}" name="idnat" value="{escape(id_nat)}">'
            f'<strong>{escape(prof["given_name"])} {escape(prof["family_name"])}</strong>{label} '
            f'<small>idNat {escape(id_nat)}</small>{details}</button>')


def notice_page(title: str, message: str, *, element_id: str = "notice") -> str:
    return f"""<!DOCTYPE html>
<html lang="fr"><head><meta charset="utf-8"><title>{escape(title)}</title><style>{_STYLE}</style></head>
<body><h1>{escape(title)}</h1><p id="{escape(element_id)}">{escape(message)}</p></body></html>
"""
