"""What PSC tells us about a professional, as plain immutable values.

Field names follow the PSC userinfo (``SubjectRefPro.exercices[].activities[]``) so that the mapping stays
readable; codes are kept as strings exactly as PSC sends them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PROFESSION_CODE_SYSTEM = "1.2.250.1.71.1.2.7"  # TRE_G15 ProfessionSante
SPECIALTY_CODE_SYSTEM = "1.2.250.1.71.4.2.5"  # TRE_R38 SpecialiteOrdinale and related savoir-faire
SECTOR_CODE_SYSTEM = "1.2.250.1.71.4.2.4"  # TRE_R02 SecteurActivite (SAxx)
ID_NAT_PS_OID = "1.2.250.1.71.4.2.1"
STRUCTURE_ID_OID = "1.2.250.1.71.4.2.2"


@dataclass(frozen=True)
class Activity:
    """One place where the professional works (a structure and its sector)."""

    structure_name: str  # raisonSocialeSite
    sector_code: str  # codeSecteurDactivite, e.g. SA07
    structure_id: str  # ancienIdentifiantDeLaStructure: 1+FINESS, 3+SIRET, 4+cabinet RPPS
    technical_structure_id: str = ""  # identifiantTechniqueDeLaStructure
    mode_code: str = ""  # codeModeExercice: L libéral, S salarié...
    role_code: str = ""  # codeRole
    finess: str = ""
    siret: str = ""

    def to_dict(self) -> dict[str, str]:
        return {
            "structure_name": self.structure_name,
            "sector_code": self.sector_code,
            "structure_id": self.structure_id,
            "technical_structure_id": self.technical_structure_id,
            "mode_code": self.mode_code,
            "role_code": self.role_code,
            "finess": self.finess,
            "siret": self.siret,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Activity":
        return cls(**{k: str(data.get(k) or "") for k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Exercice:
    """One profession exercised by the professional, with its activities."""

    profession_code: str  # codeProfession, e.g. 10 médecin, 60 infirmier
    category_code: str = ""  # codeCategorieProfessionnelle: C civil, M militaire, E étudiant
    specialty_type_code: str = ""  # codeTypeSavoirFaire: S spécialité ordinale...
    specialty_code: str = ""  # codeSavoirFaire, e.g. SM44
    family_name: str = ""  # nomDexercice
    given_name: str = ""  # prenomDexercice
    civility_code: str = ""  # codeCiviliteDexercice
    activities: tuple[Activity, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "profession_code": self.profession_code,
            "category_code": self.category_code,
            "specialty_type_code": self.specialty_type_code,
            "specialty_code": self.specialty_code,
            "family_name": self.family_name,
            "given_name": self.given_name,
            "civility_code": self.civility_code,
            "activities": [a.to_dict() for a in self.activities],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Exercice":
        return cls(
            **{k: str(data.get(k) or "") for k in cls.__dataclass_fields__ if k != "activities"},
            activities=tuple(Activity.from_dict(a) for a in data.get("activities") or ()),
        )


@dataclass(frozen=True)
class ActivityChoice:
    """One (exercice, activity) pair a professional may act under; ``key`` is stable for forms."""

    key: str
    exercice: Exercice
    activity: Activity

    @property
    def label(self) -> str:
        specialty = f" / {self.exercice.specialty_code}" if self.exercice.specialty_code else ""
        return (f"{self.activity.structure_name} ({self.activity.sector_code}) - "
                f"profession {self.exercice.profession_code}{specialty}")


@dataclass(frozen=True)
class Professional:
    """The authenticated health professional, from PSC userinfo."""

    id_nat: str  # SubjectNameID: 8 + RPPS (or 0 + ADELI...)
    given_name: str
    family_name: str
    sub: str = ""
    exercices: tuple[Exercice, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def display_name(self) -> str:
        return f"{self.given_name} {self.family_name}".strip()

    def activity_choices(self) -> list[ActivityChoice]:
        """Every activity the professional can pick, keyed ``<exercice index>.<activity index>``."""
        return [
            ActivityChoice(f"{i}.{j}", exercice, activity)
            for i, exercice in enumerate(self.exercices)
            for j, activity in enumerate(exercice.activities)
        ]

    def activity_choice(self, key: str) -> ActivityChoice:
        for choice in self.activity_choices():
            if choice.key == key:
                return choice
        raise KeyError(f"professional {self.id_nat} has no activity {key!r}")

    def to_dict(self) -> dict[str, Any]:
        """A compact JSON-able form (without ``raw``), small enough for a session cookie."""
        return {
            "id_nat": self.id_nat,
            "given_name": self.given_name,
            "family_name": self.family_name,
            "sub": self.sub,
            "exercices": [e.to_dict() for e in self.exercices],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Professional":
        return cls(
            id_nat=str(data["id_nat"]),
            given_name=str(data.get("given_name") or ""),
            family_name=str(data.get("family_name") or ""),
            sub=str(data.get("sub") or ""),
            exercices=tuple(Exercice.from_dict(e) for e in data.get("exercices") or ()),
        )


@dataclass(frozen=True)
class Tokens:
    """The token endpoint's answer."""

    access_token: str
    id_token: str
    token_type: str = "Bearer"
    expires_in: int = 0
    refresh_token: str = ""
    scope: str = ""
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Introspection:
    """An RFC 7662 introspection answer. ``exp`` is epoch seconds (0 when unknown)."""

    active: bool
    sub: str = ""
    exp: float = 0.0
    iat: float = 0.0
    client_id: str = ""
    scope: str = ""
    subject_name_id: str = ""  # PSC adds the idNat when an access token is introspected
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
