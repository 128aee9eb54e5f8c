import pytest

from drimbox.psc import PscError, parse_userinfo
from drimbox.psc.model import Professional


def userinfo_with_two_exercices() -> dict:
    return {
        "sub": "f:550dc1c8-d97b-4b1e-ac8c-8eb4471cf9dd:810002000023",
        "SubjectNameID": "810002000023",
        "preferred_username": "810002000023",
        "given_name": "Paul",
        "family_name": "DURAND",
        "SubjectRefPro": {"codeCivilite": "M", "exercices": [
            {
                "codeProfession": "10", "codeCategorieProfessionnelle": "C", "codeTypeSavoirFaire": "S",
                "codeSavoirFaire": "SM54", "nomDexercice": "DURAND", "prenomDexercice": "Paul",
                "activities": [
                    {"raisonSocialeSite": "CABINET DU DOCTEUR DURAND", "codeSecteurDactivite": "SA07",
                     "ancienIdentifiantDeLaStructure": "410002000023001",
                     "identifiantTechniqueDeLaStructure": "R10002", "codeModeExercice": "L"},
                    {"raisonSocialeSite": "CENTRE HOSPITALIER", "codeSecteurDactivite": "SA01",
                     "ancienIdentifiantDeLaStructure": "1690000001", "numeroFinessSite": "690000001",
                     "codeModeExercice": "S", "unknownFutureField": "ignored"},
                ],
            },
            {"codeProfession": "21", "activities": [
                {"raisonSocialeSite": "PHARMACIE DU CENTRE", "codeSecteurDactivite": "SA33",
                 "ancienIdentifiantDeLaStructure": "3123"}]},
        ]},
    }


def test_several_exercices_and_activities():
    prof = parse_userinfo(userinfo_with_two_exercices())
    assert prof.id_nat == "810002000023"
    assert prof.display_name == "Paul DURAND"
    assert [e.profession_code for e in prof.exercices] == ["10", "21"]
    assert prof.exercices[0].specialty_code == "SM54"
    choices = prof.activity_choices()
    assert [c.key for c in choices] == ["0.0", "0.1", "1.0"]
    assert [(c.activity.structure_name, c.activity.sector_code, c.activity.structure_id) for c in choices] == [
        ("CABINET DU DOCTEUR DURAND", "SA07", "410002000023001"),
        ("CENTRE HOSPITALIER", "SA01", "1690000001"),
        ("PHARMACIE DU CENTRE", "SA33", "3123"),
    ]
    assert choices[1].activity.finess == "690000001"
    assert prof.activity_choice("1.0").exercice.profession_code == "21"


def test_compact_form_round_trips_without_raw():
    prof = parse_userinfo(userinfo_with_two_exercices())
    compact = prof.to_dict()
    assert "raw" not in compact
    assert Professional.from_dict(compact) == prof


def test_names_fall_back_to_the_exercice():
    doc = userinfo_with_two_exercices()
    del doc["given_name"], doc["family_name"]
    prof = parse_userinfo(doc)
    assert (prof.given_name, prof.family_name) == ("Paul", "DURAND")


def test_professional_without_ref_pro_has_no_activities():
    prof = parse_userinfo({"SubjectNameID": "810002000031", "given_name": "A", "family_name": "B"})
    assert prof.exercices == () and prof.activity_choices() == []


@pytest.mark.parametrize("doc", [{"given_name": "A"}, [], {"SubjectNameID": ""}])
def test_userinfo_without_national_id_is_refused(doc):
    with pytest.raises(PscError) as error:
        parse_userinfo(doc)
    assert error.value.reason == "bad_userinfo"
