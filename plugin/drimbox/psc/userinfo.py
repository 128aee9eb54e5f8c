"""Turn a PSC userinfo document into a :class:`Professional`."""

from __future__ import annotations

from typing import Any

from drimbox.psc.errors import PscError
from drimbox.psc.model import Activity, Exercice, Professional


def parse_userinfo(userinfo: dict[str, Any]) -> Professional:
    """Read ``SubjectNameID``, names and ``SubjectRefPro.exercices[].activities[]``.

    Missing optional parts give empty values; a document without any national id is refused, since
    nothing downstream (VIHF, audit) can work without it.
    """
    if not isinstance(userinfo, dict):
        raise PscError("PSC userinfo is not a JSON object", reason="bad_userinfo")
    id_nat = _text(userinfo.get("SubjectNameID")) or _text(userinfo.get("preferred_username"))
    if not id_nat:
        raise PscError("PSC userinfo has no SubjectNameID (national id of the professional)", reason="bad_userinfo")
    ref_pro = userinfo.get("SubjectRefPro") or {}
    raw_exercices = ref_pro.get("exercices") if isinstance(ref_pro, dict) else None
    exercices = tuple(_exercice(e) for e in _list(raw_exercices) if isinstance(e, dict))
    given = _text(userinfo.get("given_name")) or (exercices[0].given_name if exercices else "")
    family = _text(userinfo.get("family_name")) or (exercices[0].family_name if exercices else "")
    return Professional(
        id_nat=id_nat,
        given_name=given,
        family_name=family,
        sub=_text(userinfo.get("sub")),
        exercices=exercices,
        raw=userinfo,
    )


def _exercice(data: dict[str, Any]) -> Exercice:
    activities = _list(data.get("activities"))
    return Exercice(
        profession_code=_text(data.get("codeProfession")),
        category_code=_text(data.get("codeCategorieProfessionnelle")),
        specialty_type_code=_text(data.get("codeTypeSavoirFaire")),
        specialty_code=_text(data.get("codeSavoirFaire")),
        family_name=_text(data.get("nomDexercice")),
        given_name=_text(data.get("prenomDexercice")),
        civility_code=_text(data.get("codeCiviliteDexercice")),
        activities=tuple(_activity(a) for a in activities if isinstance(a, dict)),
    )


def _activity(data: dict[str, Any]) -> Activity:
    return Activity(
        structure_name=_text(data.get("raisonSocialeSite")) or _text(data.get("enseigneCommercialeSite")),
        sector_code=_text(data.get("codeSecteurDactivite")),
        structure_id=_text(data.get("ancienIdentifiantDeLaStructure")),
        technical_structure_id=_text(data.get("identifiantTechniqueDeLaStructure")),
        mode_code=_text(data.get("codeModeExercice")),
        role_code=_text(data.get("codeRole")),
        finess=_text(data.get("numeroFinessSite")),
        siret=_text(data.get("numeroSiretSite")),
    )


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()
