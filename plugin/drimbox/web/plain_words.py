"""The operator's words: internal states and errors said plainly, in French (default) or English."""

from __future__ import annotations

import re

LANGUAGES = ("fr", "en")

_STUDY_STATES = {
    "waiting_report": ("En attente du compte rendu", "Waiting for the report"),
    "waiting_images": ("En attente des images", "Waiting for the images"),
    "waiting_stable": ("Images en cours de réception", "Images still arriving"),
    "conflict": ("Compte rendu et images en désaccord", "Report and images disagree"),
    "manifest_ready": ("Manifeste prêt", "Manifest ready"),
    "withdrawn": ("Retirée", "Withdrawn"),
    "failed": ("Manifeste impossible à construire", "Manifest could not be built"),
    "unknown": ("Inconnue de la DRIMbox", "Unknown to the DRIMbox"),
}
_PUBLICATION_STATES = {
    "queued": ("En attente d'envoi", "Waiting to be sent"),
    "running": ("Envoi en cours", "Being sent"),
    "done": ("Terminée", "Done"),
    "failed": ("Refusée, à reprendre", "Refused, needs attention"),
    "cancelled": ("Annulée", "Cancelled"),
    "superseded": ("Remplacée par une version plus récente", "Replaced by a newer version"),
    "skipped": ("Non envoyée au DMP", "Not sent to the DMP"),
}
_ACTIONS = {
    "register": ("Publication au DMP", "Publication to the DMP"),
    "delete": ("Retrait du DMP", "Withdrawal from the DMP"),
}
_DMP_STATUSES = {
    "queued": ("En attente d'envoi", "Waiting to be sent"),
    "approved": ("Publié (Approved)", "Published (Approved)"),
    "deprecated": ("Remplacé par une version plus récente", "Replaced by a newer version"),
    "deleted": ("Retiré du DMP", "Withdrawn from the DMP"),
    "deletion_queued": ("Retrait en attente", "Withdrawal waiting"),
    "rejected": ("Refusé par le DMP", "Refused by the DMP"),
    "not_sent": ("Non envoyé", "Not sent"),
    "": ("Pas encore envoyé", "Not sent yet"),
}
_MANIFEST_STATUSES = {
    "current": ("En vigueur", "In force"),
    "superseded": ("Remplacé", "Replaced"),
    "withdrawn": ("Retiré", "Withdrawn"),
}
_REPORT_STATES = {
    "active": ("En vigueur", "In force"),
    "replaced": ("Remplacé", "Replaced"),
    "withdrawn": ("Retiré", "Withdrawn"),
    "rejected": ("Refusé", "Refused"),
}
_TABLES = {"study": _STUDY_STATES, "publication": _PUBLICATION_STATES, "action": _ACTIONS,
           "dmp": _DMP_STATUSES, "manifest": _MANIFEST_STATUSES, "report": _REPORT_STATES}

# Known error shapes (from drimbox.pipeline.publisher and drimbox.dmp.client), most specific first.
_ERRORS: tuple[tuple[re.Pattern[str], tuple[str, str]], ...] = (
    (re.compile(r"DMP unavailable: timeout"), ("Le DMP n'a pas répondu à temps ; un nouvel essai est prévu.",
                                                "The DMP did not answer in time; another attempt is planned.")),
    (re.compile(r"DMP unavailable: .*(ConnectionError|ConnectTimeout|SSLError|refused)", re.I),
     ("Le DMP est injoignable (réseau ou certificat) ; un nouvel essai est prévu.",
      "The DMP cannot be reached (network or certificate); another attempt is planned.")),
    (re.compile(r"DMP unavailable: HTTP 5\d\d"), ("Le DMP est en panne (erreur serveur) ; un nouvel essai est prévu.",
                                                  "The DMP is failing (server error); another attempt is planned.")),
    (re.compile(r"DMP unavailable"), ("Le DMP est indisponible ; un nouvel essai est prévu.",
                                      "The DMP is unavailable; another attempt is planned.")),
    (re.compile(r"refused by the DMP"), ("Le DMP a refusé le document : corrigez la cause puis relancez.",
                                         "The DMP refused the document: fix the cause, then retry.")),
    (re.compile(r"cannot build the lot"), ("Le lot DMP n'a pas pu être construit (données du compte rendu).",
                                           "The DMP submission could not be built (report data).")),
    (re.compile(r"DESTDMP=N"), ("Le RIS a demandé de ne pas publier au DMP.",
                                "The RIS asked for no DMP publication.")),
    (re.compile(r"DMP disabled"), ("La publication au DMP est désactivée sur cette DRIMbox.",
                                   "DMP publication is disabled on this DRIMbox.")),
    (re.compile(r"nothing Approved in the DMP"), ("Rien n'était publié au DMP pour cette étude.",
                                                  "Nothing was published in the DMP for this study.")),
    (re.compile(r"report and the images disagree|and the images disagree"),
     ("Le compte rendu et les images ne concordent pas (patient ou étude).",
      "The report and the images do not match (patient or study).")),
    (re.compile(r"no image of it has been received"), ("Aucune image de cette étude n'a été reçue.",
                                                       "No image of this study has been received.")),
    (re.compile(r"withdrawn or the order cancelled"), ("Le compte rendu a été retiré ou l'examen annulé.",
                                                       "The report was withdrawn or the exam cancelled.")),
    (re.compile(r"withdrawn from the DMP by operator"), ("Retiré du DMP par un opérateur.",
                                                         "Withdrawn from the DMP by an operator.")),
    (re.compile(r"every instance of the study was rejected"), ("Toutes les images de l'étude ont été rejetées.",
                                                              "Every image of the study was rejected.")),
)


def language(query: dict[str, str], headers: dict[str, str]) -> str:
    """``?lang=en`` wins, then the browser's first choice between French and English; French by default."""
    asked = query.get("lang", "")
    if asked in LANGUAGES:
        return asked
    for item in headers.get("accept-language", "").split(","):
        code = item.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return "fr"


def label(kind: str, value: str | None, lang: str) -> str:
    words = _TABLES[kind].get(value or "")
    if words is None:
        return value or ""
    return words[0] if lang == "fr" else words[1]


def explain(error: str | None, lang: str) -> str:
    """An error in plain words; the technical text stays available next to it."""
    if not error:
        return ""
    for pattern, words in _ERRORS:
        if pattern.search(error):
            return words[0] if lang == "fr" else words[1]
    return error


def translator(lang: str):
    """The template's ``t(fr, en)``."""
    return lambda fr, en: fr if lang == "fr" else en
