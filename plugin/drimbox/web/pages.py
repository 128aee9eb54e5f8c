"""The few HTML pages of the viewer host: a refused link, the choice of an activity. French first, then English."""

from __future__ import annotations

from html import escape

from drimbox.web.http import Response

_STYLE = ("body{font-family:system-ui,sans-serif;max-width:44rem;margin:3rem auto;padding:0 1rem;color:#1b1b1b}"
          "h1{font-size:1.4rem}p.en{color:#555}.code{font-family:monospace;color:#777;font-size:.85rem}"
          "button{display:block;margin:.5rem 0;padding:.6rem 1rem;font-size:1rem;cursor:pointer}")

# reason -> (French, English)
MESSAGES = {
    "missing_study": ("Ce lien ne désigne aucun examen.", "This link names no study."),
    "unknown_study": ("Cet examen n'est pas (ou plus) partagé par ce service d'imagerie.",
                      "This study is not (or no longer) shared by this imaging service."),
    "withdrawn": ("Cet examen a été retiré du partage.", "This study has been withdrawn from sharing."),
    "report_replaced": ("Ce compte rendu a été remplacé : utilisez le lien du compte rendu en vigueur.",
                        "This report has been replaced: use the link of the current report."),
    "report_mismatch": ("Ce lien ne correspond pas au compte rendu publié pour cet examen.",
                        "This link does not match the report published for this study."),
    "accession_mismatch": ("Ce lien ne correspond pas au numéro d'examen publié.",
                           "This link does not match the published accession number."),
    "expired": ("Votre lien d'accès a expiré. Demandez-en un nouveau depuis votre espace santé.",
                "Your access link has expired. Ask for a new one from your health space."),
    "bad_signature": ("Ce lien d'accès n'est pas authentique.", "This access link is not genuine."),
    "malformed": ("Ce lien d'accès est illisible.", "This access link cannot be read."),
    "bad_issuer": ("Ce lien d'accès n'a pas été émis par un service de confiance.",
                   "This access link was not issued by a trusted service."),
    "bad_audience": ("Ce lien d'accès est destiné à un autre service.",
                     "This access link is meant for another service."),
    "not_yet_valid": ("Ce lien d'accès n'est pas encore valide.", "This access link is not valid yet."),
    "other_study": ("Ce lien d'accès concerne un autre examen.", "This access link is for another study."),
    "access_denied": ("La connexion Pro Santé Connect a été annulée.", "The Pro Santé Connect login was cancelled."),
    "login_failed": ("La connexion Pro Santé Connect a échoué. Réessayez depuis le lien du compte rendu.",
                     "The Pro Santé Connect login failed. Try again from the report's link."),
    "no_activity": ("Aucune situation d'exercice n'est associée à votre compte Pro Santé Connect.",
                    "No activity is attached to your Pro Santé Connect account."),
}


def page(title: str, body: str, status: int = 200) -> Response:
    html = ("<!doctype html><html lang='fr'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width,initial-scale=1'>"
            f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>{body}</body></html>")
    return Response(status, html.encode("utf-8"), "text/html; charset=utf-8", dict(NO_STORE))


NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY"}


def refused(reason: str, status: int, detail: str = "") -> Response:
    french, english = MESSAGES.get(reason, ("L'accès à cet examen est refusé.", "Access to this study is refused."))
    body = (f"<h1 id='refused'>Accès refusé / Access refused</h1>"
            f"<p class='fr' lang='fr'>{escape(french)}</p><p class='en' lang='en'>{escape(english)}</p>"
            f"<p class='code'>{escape(reason)}{(' : ' + escape(detail)) if detail else ''}</p>")
    return page("Accès refusé / Access refused", body, status)


def activity_choice(name: str, choices: list[tuple[str, str]], return_url: str, csrf: str) -> Response:
    buttons = "".join(
        f"<button type='submit' name='activity' value='{escape(key, quote=True)}' "
        f"id='activity-{escape(key, quote=True)}'>"
        f"{escape(label)}</button>" for key, label in choices)
    body = (f"<h1>Bonjour {escape(name)}</h1>"
            "<p>Choisissez la situation d'exercice dans laquelle vous consultez cet examen.</p>"
            "<p class='en' lang='en'>Pick the activity under which you are viewing this study.</p>"
            "<form method='post' action='/drimbox/psc/activity' id='activity-form'>"
            f"<input type='hidden' name='return' value='{escape(return_url, quote=True)}'>"
            f"<input type='hidden' name='csrf' value='{escape(csrf, quote=True)}'>{buttons}</form>")
    return page("Situation d'exercice / Activity", body)
