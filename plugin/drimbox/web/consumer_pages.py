"""The consumer's pages (vi host): server-rendered, French by default, English with ``lang=en``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from drimbox.web.http import Response

_TEMPLATES = jinja2.Environment(loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
                                autoescape=True)
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}
LANGS = ("fr", "en")

TEXTS: dict[str, dict[str, Any]] = {
    "fr": {
        "other_lang": "English", "born": "né(e) le", "sex": "sexe", "birthplace": "lieu de naissance (INSEE)",
        "sexes": {"M": "masculin", "F": "féminin", "O": "autre", "U": "inconnu"},
        "show_ins": "Afficher l'INS", "retry": "Réessayer",
        "not_for_diagnosis": "Visionneuse de consultation : les images affichées ne sont pas destinées au diagnostic.",
        "activity": "Situation d'exercice", "activity_intro": "Choisissez la situation d'exercice dans laquelle vous "
        "consultez le dossier d'imagerie de ce patient.", "continue": "Continuer",
        "reason": "Motif d'accès", "reason_intro": "Indiquez pourquoi vous accédez aux examens de ce patient.",
        "reason_text": "Précisez (obligatoire pour « Autre »)",
        "reasons": {"consent": "Patient informé, consentement recueilli", "emergency": "Urgence vitale",
                    "regulation": "Régulation médicale (centre 15)", "other": "Autre motif"},
        "history": "Historique d'imagerie", "history_for": "Consultation par",
        "modality": "Modalité", "region": "Région anatomique", "date": "Date", "description": "Description",
        "structure": "Structure productrice", "all": "toutes", "date_from": "Du", "date_to": "Au",
        "filter": "Filtrer", "refresh": "Actualiser depuis le DMP", "exam_count": "{shown} examen(s) sur {total}",
        "no_exam": "Aucun examen ne correspond aux filtres.",
        "no_exam_at_all": "Le DMP ne contient aucun examen d'imagerie partagé pour ce patient.",
        "refused_title": "Demande refusée", "dmp_title": "Dossier médical partagé",
        "exam_title": "Examen", "back_to_history": "Retour à l'historique", "open": "Ouvrir",
        "open_viewer": "Ouvrir dans la visionneuse",
        "exam_states": {"fetching_kos": "Lecture du manifeste de l'examen dans le DMP…",
                        "fetching": "Récupération des images : {done} série(s) sur {total}…",
                        "complete": "Examen récupéré ({total} série(s)).",
                        "partial": "Examen récupéré en partie : {done} série(s) sur {total}."},
        "exam": {"refused_host": "Cet examen est hébergé par un serveur qui ne figure pas dans la liste blanche "
                 "DRIM-M en vigueur : il ne peut pas être récupéré.",
                 "refused_certificate": "Le serveur qui héberge cet examen ne présente pas le certificat que la liste "
                 "blanche DRIM-M désigne pour lui (DNCertificatOperateur) : l'examen n'est pas récupéré.",
                 "other_patient": "Le manifeste de cet examen concerne un autre patient : il n'est pas affiché.",
                 "failed": "L'examen n'a pas pu être récupéré auprès de son service d'imagerie (injoignable, ou "
                 "examen retiré du partage entre-temps). Les autres examens restent consultables.",
                 "partial": "Une partie des séries n'a pas pu être récupérée : les images reçues sont consultables, "
                 "réessayez pour récupérer le reste.",
                 "unknown": "Cet examen ne figure pas dans l'historique de ce contexte.",
                 "not_importable": "Cet examen ne peut pas être importé : il n'est plus en cache dans cette "
                 "DRIMbox ou un import est déjà en cours."},
        "open_report": "Compte rendu (PDF)", "compare_with": "Comparer avec l'examen du",
        "compare_with_local": "Comparer avec l'examen du PACS local du",
        "report": {"none": "Aucun compte rendu n'est partagé dans le DMP pour cet examen.",
                   "unusable": "Le compte rendu partagé pour cet examen ne contient pas de PDF lisible."},
        "launch_title": "Appel contextuel de test",
        "launch": {"intro": "Page de test : ce formulaire envoie l'appel contextuel exactement comme un RIS ou un DPI "
                   "(POST application/x-www-form-urlencoded, UTF-8).", "optional": "facultatif",
                   "button": "Envoyer l'appel contextuel"},
        "kos_title": "Ouvrir un fichier KOS",
        "kos": {"intro": "Si le DMP ne répond pas, vous pouvez ouvrir un examen à partir de son manifeste (fichier "
                "KOS DICOM) : les mêmes vérifications s'appliquent (patient, liste blanche, certificat de la source).",
                "file": "Fichier KOS", "button": "Ouvrir l'examen", "link": "Ouvrir un fichier KOS…",
                "unreadable": "Ce fichier n'est pas un manifeste KOS lisible.",
                "other_patient": "Ce manifeste concerne un autre patient que celui de ce contexte."},
        "import": {"title": "Importer dans mon PACS", "button": "Importer dans mon PACS",
                   "replace": "Remplacer l'identifiant patient par l'IPP local {ipp} ({issuer}) ; les UID de "
                   "l'examen sont conservés.",
                   "to": "L'examen sera envoyé à {aet}.", "none": "Aucun PACS local n'est configuré : l'examen "
                   "sera conservé dans cette DRIMbox.",
                   "states": {"importing": "Import en cours…", "imported": "Examen importé.",
                              "failed": "L'import a échoué : vous pouvez réessayer."}},
        "appel": {"unknown": "Le paramètre « {p} » n'est pas un paramètre de l'appel contextuel.",
                  "empty": "Le paramètre obligatoire « {p} » est absent ou vide.",
                  "repeated": "Le paramètre « {p} » est donné plusieurs fois.",
                  "invalid": "La valeur du paramètre « {p} » n'est pas valide.",
                  "not_form": "La requête n'est pas un formulaire application/x-www-form-urlencoded en UTF-8."},
        "context": {"unknown": "Ce contexte de consultation n'existe pas ou n'appartient pas à ce navigateur. "
                    "Relancez la consultation depuis votre logiciel (RIS ou DPI).",
                    "expired": "Ce contexte de consultation a expiré. Relancez la consultation depuis votre logiciel.",
                    "other_professional": "Ce contexte a été ouvert par un autre professionnel.",
                    "no_activity": "Aucune situation d'exercice n'est associée à votre compte Pro Santé Connect.",
                    "bad_form": "Le formulaire a expiré ou n'est pas valide : recommencez."},
        "dmp": {"unavailable": "Le DMP ne répond pas pour le moment. Vous pouvez réessayer.",
                "no_dmp": "Ce patient n'a pas de dossier médical partagé (DMP) : aucun examen partagé à afficher.",
                "not_authorized": "L'accès au DMP de ce patient n'est pas autorisé (dossier fermé ou accès "
                "bloqué par le patient). Aucun examen ne peut être affiché.",
                "refused": "Le DMP a refusé la demande d'accès à ce dossier.",
                "disabled": "Cette DRIMbox n'est pas raccordée au DMP."},
    },
    "en": {
        "other_lang": "Français", "born": "born", "sex": "sex", "birthplace": "birth place (INSEE)",
        "sexes": {"M": "male", "F": "female", "O": "other", "U": "unknown"},
        "show_ins": "Show the INS", "retry": "Try again",
        "not_for_diagnosis": "Review viewer: the images shown are not meant for diagnosis.",
        "activity": "Activity", "activity_intro": "Pick the activity under which you are consulting this patient's "
        "imaging record.", "continue": "Continue",
        "reason": "Access reason", "reason_intro": "Say why you are accessing this patient's exams.",
        "reason_text": "Details (required for \u201cOther\u201d)",
        "reasons": {"consent": "Patient informed, consent collected", "emergency": "Vital emergency",
                    "regulation": "Medical regulation (centre 15)", "other": "Other reason"},
        "history": "Imaging history", "history_for": "Consulted by",
        "modality": "Modality", "region": "Anatomical region", "date": "Date", "description": "Description",
        "structure": "Producing structure", "all": "all", "date_from": "From", "date_to": "To",
        "filter": "Filter", "refresh": "Refresh from the DMP", "exam_count": "{shown} exam(s) of {total}",
        "no_exam": "No exam matches the filters.",
        "no_exam_at_all": "The DMP holds no shared imaging exam for this patient.",
        "refused_title": "Request refused", "dmp_title": "Shared medical record",
        "exam_title": "Exam", "back_to_history": "Back to the history", "open": "Open",
        "open_viewer": "Open in the viewer",
        "exam_states": {"fetching_kos": "Reading the exam's manifest from the DMP…",
                        "fetching": "Retrieving the images: {done} of {total} series…",
                        "complete": "Exam retrieved ({total} series).",
                        "partial": "Exam partly retrieved: {done} of {total} series."},
        "exam": {"refused_host": "This exam is hosted by a server that is not in the DRIM-M whitelist in force: it "
                 "cannot be retrieved.",
                 "refused_certificate": "The server hosting this exam does not present the certificate the DRIM-M "
                 "whitelist names for it (DNCertificatOperateur): the exam is not retrieved.",
                 "other_patient": "This exam's manifest is about another patient: it is not shown.",
                 "failed": "The exam could not be retrieved from its imaging service (unreachable, or withdrawn "
                 "from sharing meanwhile). The other exams remain available.",
                 "partial": "Some series could not be retrieved: the images received can be viewed, try again to "
                 "get the rest.",
                 "unknown": "This exam is not in this context's history.",
                 "not_importable": "This exam cannot be imported: it is no longer cached in this DRIMbox or an "
                 "import is already running."},
        "open_report": "Report (PDF)", "compare_with": "Compare with the exam of",
        "compare_with_local": "Compare with the local PACS's exam of",
        "report": {"none": "No report is shared in the DMP for this exam.",
                   "unusable": "The report shared for this exam holds no readable PDF."},
        "launch_title": "Test appel contextuel",
        "launch": {"intro": "Test page: this form posts the appel contextuel exactly as a RIS or DPI does "
                   "(POST application/x-www-form-urlencoded, UTF-8).", "optional": "optional",
                   "button": "Send the appel contextuel"},
        "kos_title": "Open a KOS file",
        "kos": {"intro": "When the DMP does not answer, you can open an exam from its manifest (a DICOM KOS file): "
                "the same checks apply (patient, whitelist, source certificate).",
                "file": "KOS file", "button": "Open the exam", "link": "Open a KOS file…",
                "unreadable": "This file is not a readable KOS manifest.",
                "other_patient": "This manifest is about another patient than this context's."},
        "import": {"title": "Import into my PACS", "button": "Import into my PACS",
                   "replace": "Replace the patient identifier with the local IPP {ipp} ({issuer}); the exam's UIDs "
                   "are kept.",
                   "to": "The exam will be sent to {aet}.", "none": "No local PACS is configured: the exam will be "
                   "kept in this DRIMbox.",
                   "states": {"importing": "Import running…", "imported": "Exam imported.",
                              "failed": "The import failed: you may try again."}},
        "appel": {"unknown": "\u201c{p}\u201d is not a parameter of the appel contextuel.",
                  "empty": "The mandatory parameter \u201c{p}\u201d is missing or empty.",
                  "repeated": "The parameter \u201c{p}\u201d is given more than once.",
                  "invalid": "The value of the parameter \u201c{p}\u201d is not valid.",
                  "not_form": "The request is not an application/x-www-form-urlencoded UTF-8 form."},
        "context": {"unknown": "This consultation context does not exist or belongs to another browser. Start the "
                    "consultation again from your software (RIS or DPI).",
                    "expired": "This consultation context has expired. Start again from your software.",
                    "other_professional": "This context was opened by another professional.",
                    "no_activity": "No activity is attached to your Pro Santé Connect account.",
                    "bad_form": "The form has expired or is not valid: start again."},
        "dmp": {"unavailable": "The DMP does not answer at the moment. You may try again.",
                "no_dmp": "This patient has no shared medical record (DMP): no shared exam to show.",
                "not_authorized": "Access to this patient's DMP is not allowed (record closed or access blocked by "
                "the patient). No exam can be shown.",
                "refused": "The DMP refused access to this record.",
                "disabled": "This DRIMbox is not connected to the DMP."},
    },
}


def lang_of(query: dict[str, str], accept_language: str = "") -> str:
    chosen = query.get("lang", "")
    if chosen in LANGS:
        return chosen
    return "en" if accept_language.lower().startswith("en") else "fr"


def render(template: str, *, lang: str, title_key: str, page_url: str, status: int = 200, **values: Any) -> Response:
    texts = TEXTS[lang]
    other = "en" if lang == "fr" else "fr"
    html = _TEMPLATES.get_template(template).render(
        lang=lang, t=texts, title=texts[title_key], other_lang_url=f"{page_url}?lang={other}", page_url=page_url,
        **values)
    return Response(status, html.encode("utf-8"), "text/html; charset=utf-8", dict(NO_STORE))


def message(kind: str, key: str, status: int, *, lang: str, page_url: str, title_key: str = "refused_title",
            parameter: str = "", detail: str = "", retry_url: str = "", appel=None, show_ins: bool = False,
            kos_url: str = "") -> Response:
    text = TEXTS[lang][kind][key].format(p=parameter)
    return render("consumer_message.html.j2", lang=lang, title_key=title_key, page_url=page_url, status=status,
                  message=text, detail=detail, retry_url=retry_url, appel=appel, show_ins=show_ins, kos_url=kos_url)
