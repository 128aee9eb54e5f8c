"""The professionals a tester can log in as, and the PSC userinfo document built for each.

A professional is given as ``{"idNat", "given_name", "family_name", "civility"?, "label"?, "exercices": [...]}``
where ``exercices`` use PSC's own field names (``codeProfession``, ``codeSavoirFaire``, ``activities`` with
``raisonSocialeSite``, ``codeSecteurDactivite``, ``ancienIdentifiantDeLaStructure``...). Missing PSC fields are
filled with empty strings, as PSC does.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

ROLE_CODE_SYSTEM = "1.2.250.1.213.1.1.5.5"
SECTOR_CODE_SYSTEM = "1.2.250.1.71.4.2.4"

EXERCICE_FIELDS = (
    "codeProfession", "codeCategorieProfessionnelle", "codeCiviliteDexercice", "nomDexercice",
    "prenomDexercice", "codeTypeSavoirFaire", "codeSavoirFaire",
)
ACTIVITY_FIELDS = (
    "codeModeExercice", "codeSecteurDactivite", "codeSectionPharmacien", "codeRole", "codeGenreActivite",
    "numeroSiretSite", "numeroSirenSite", "numeroFinessSite", "numeroFinessetablissementJuridique",
    "identifiantTechniqueDeLaStructure", "raisonSocialeSite", "enseigneCommercialeSite", "complementDestinataire",
    "complementPointGeographique", "numeroVoie", "indiceRepetitionVoie", "codeTypeDeVoie", "libelleVoie",
    "mentionDistribution", "bureauCedex", "codePostal", "codeCommune", "codePays", "telephone", "telephone2",
    "telecopie", "adresseEMail", "codeDepartement", "ancienIdentifiantDeLaStructure", "autoriteDenregistrement",
)


def _activity(name: str, sector: str, structure_id: str, technical_id: str, mode: str, **extra: str) -> dict[str, str]:
    return {
        "raisonSocialeSite": name,
        "codeSecteurDactivite": sector,
        "ancienIdentifiantDeLaStructure": structure_id,
        "identifiantTechniqueDeLaStructure": technical_id,
        "codeModeExercice": mode,
        "codeGenreActivite": "GENR01",
        "codePays": "99000",
        **extra,
    }


# idNat = "8" + RPPS (11 digits with a Luhn check digit). Structure ids: 1 + FINESS, 3 + SIRET, 4 + cabinet id.
DEFAULT_PROFESSIONALS: list[dict[str, Any]] = [
    {
        "idNat": "810002000015",
        "given_name": "Claire",
        "family_name": "MARTIN",
        "civility": "MME",
        "label": "Radiologue (un lieu d'exercice)",
        "exercices": [{
            "codeProfession": "10",
            "codeCategorieProfessionnelle": "C",
            "codeTypeSavoirFaire": "S",
            "codeSavoirFaire": "SM44",
            "activities": [_activity("CENTRE D'IMAGERIE DU PARC", "SA08", "334422928290001", "R10001", "L",
                                     numeroSiretSite="34422928290001", codePostal="69003",
                                     bureauCedex="69003 LYON")],
        }],
    },
    {
        "idNat": "810002000023",
        "given_name": "Paul",
        "family_name": "DURAND",
        "civility": "M",
        "label": "Médecin généraliste (deux lieux d'exercice)",
        "exercices": [{
            "codeProfession": "10",
            "codeCategorieProfessionnelle": "C",
            "codeTypeSavoirFaire": "S",
            "codeSavoirFaire": "SM54",
            "activities": [
                _activity("CABINET DU DOCTEUR DURAND", "SA07", "410002000023001", "R10002", "L",
                          codePostal="69007", bureauCedex="69007 LYON"),
                _activity("CENTRE HOSPITALIER DE DEMONSTRATION", "SA01", "1690000001", "F10003", "S",
                          numeroFinessSite="690000001", codePostal="69100", bureauCedex="69100 VILLEURBANNE"),
            ],
        }],
    },
    {
        "idNat": "810002000031",
        "given_name": "Sophie",
        "family_name": "BERNARD",
        "civility": "MME",
        "label": "Infirmière",
        "exercices": [{
            "codeProfession": "60",
            "codeCategorieProfessionnelle": "C",
            "activities": [_activity("CENTRE HOSPITALIER DE DEMONSTRATION", "SA01", "1690000001", "F10003", "S",
                                     numeroFinessSite="690000001", codePostal="69100",
                                     bureauCedex="69100 VILLEURBANNE")],
        }],
    },
    {
        "idNat": "810002000049",
        "given_name": "Jean",
        "family_name": "PETIT",
        "civility": "M",
        "label": "Urgentiste d'une autre structure",
        "exercices": [{
            "codeProfession": "10",
            "codeCategorieProfessionnelle": "C",
            "codeTypeSavoirFaire": "S",
            "codeSavoirFaire": "SM59",
            "activities": [_activity("CHU DE TEST - SERVICE DES URGENCES", "SA01", "1330000002", "F20001", "S",
                                     numeroFinessSite="330000002", codePostal="33000", bureauCedex="33000 BORDEAUX")],
        }],
    },
]


class ProfessionalError(ValueError):
    pass


def normalize_professionals(professionals: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Check and complete the list; returns idNat -> professional, in the given order."""
    result: dict[str, dict[str, Any]] = {}
    for index, raw in enumerate(professionals):
        if not isinstance(raw, dict):
            raise ProfessionalError(f"professional #{index} must be an object")
        prof = copy.deepcopy(raw)
        id_nat = str(prof.get("idNat") or "").strip()
        if not id_nat:
            raise ProfessionalError(f"professional #{index} has no idNat")
        if id_nat in result:
            raise ProfessionalError(f"professional idNat {id_nat} is listed twice")
        for key in ("given_name", "family_name"):
            if not prof.get(key):
                raise ProfessionalError(f"professional {id_nat} has no {key}")
        prof["idNat"] = id_nat
        prof.setdefault("civility", "")
        prof.setdefault("label", "")
        exercices = prof.get("exercices") or []
        if not isinstance(exercices, list):
            raise ProfessionalError(f"professional {id_nat}: exercices must be a list")
        prof["exercices"] = [_complete_exercice(prof, e) for e in exercices]
        result[id_nat] = prof
    return result


def _complete_exercice(prof: dict[str, Any], exercice: dict[str, Any]) -> dict[str, Any]:
    done: dict[str, Any] = {key: str(exercice.get(key) or "") for key in EXERCICE_FIELDS}
    done["nomDexercice"] = done["nomDexercice"] or prof["family_name"]
    done["prenomDexercice"] = done["prenomDexercice"] or prof["given_name"]
    done["codeCiviliteDexercice"] = done["codeCiviliteDexercice"] or prof.get("civility", "")
    done["activities"] = [
        {key: str(activity.get(key) or "") for key in ACTIVITY_FIELDS} for activity in exercice.get("activities") or []
    ]
    return done


def subject_of(id_nat: str) -> str:
    """A stable technical ``sub`` in PSC's style (``f:<uuid>:<idNat>``)."""
    return f"f:{uuid.uuid5(uuid.NAMESPACE_URL, 'psc-sim:' + id_nat)}:{id_nat}"


def userinfo_of(prof: dict[str, Any]) -> dict[str, Any]:
    """The userinfo document PSC would return for this professional."""
    exercices = copy.deepcopy(prof["exercices"])
    first_activity = next((a for e in exercices for a in e["activities"]), None)
    document: dict[str, Any] = {
        "sub": subject_of(prof["idNat"]),
        "SubjectNameID": prof["idNat"],
        "preferred_username": prof["idNat"],
        "given_name": prof["given_name"],
        "family_name": prof["family_name"],
        "codeCivilite": prof.get("civility", ""),
        "SubjectRefPro": {"codeCivilite": prof.get("civility", ""), "exercices": exercices},
        "SubjectRole": [f"{e['codeProfession']}^{ROLE_CODE_SYSTEM}" for e in exercices if e["codeProfession"]],
        "otherIds": [{"identifiant": prof["idNat"], "origine": "RPPS", "qualite": 1}],
        "UITVersion": "1.0",
        "Palier_Authentification": "APPPRIP3^1.2.250.1.213.1.5.1.1.1",
    }
    if first_activity:
        document["SubjectOrganization"] = first_activity["raisonSocialeSite"]
        document["SubjectOrganizationID"] = first_activity["identifiantTechniqueDeLaStructure"]
        document["Secteur_Activite"] = f"{first_activity['codeSecteurDactivite']}^{SECTOR_CODE_SYSTEM}"
    return document
