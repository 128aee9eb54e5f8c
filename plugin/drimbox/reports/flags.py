"""The ten MetaDMPMSS flags a RIS sends as OBX (OBX-3.3 = MetaDMPMSS, OBX-5.1 = Y/N).

Defaults when a flag is absent: every flag is off except ``DESTDMP``, which is on, because a report sent to a
DRIMbox is meant for the DMP unless the RIS says otherwise. A RIS that wants no DMP publication sends
``DESTDMP`` = N explicitly.
"""

from __future__ import annotations

CODING_SYSTEM = "MetaDMPMSS"

DEFAULT_FLAGS: dict[str, bool] = {
    "MASQUE_PS": False,
    "INVISIBLE_PATIENT": False,
    "INVISIBLE_REP_LEGAUX": False,
    "CONNEXION_SECRETE": False,
    "MODIF_CONF_CODE": False,
    "DESTDMP": True,
    "DESTMSSANTEPS": False,
    "DESTMSSANTEPAT": False,
    "ACK_RECEPTION": False,
    "ACK_LECTURE_MSS": False,
}
FLAG_NAMES = tuple(DEFAULT_FLAGS)

FLAG_LABELS = {
    "MASQUE_PS": "Masque aux professionnels de Sante",
    "INVISIBLE_PATIENT": "Document Non Visible par le patient",
    "INVISIBLE_REP_LEGAUX": "Non visible par les representants Legaux du patient",
    "CONNEXION_SECRETE": "Connexion Secrete",
    "MODIF_CONF_CODE": "Modification Confidentiality Code",
    "DESTDMP": "Destinataire DMP",
    "DESTMSSANTEPS": "Destinataire PS",
    "DESTMSSANTEPAT": "Destinataire Patient",
    "ACK_RECEPTION": "Accuse de reception",
    "ACK_LECTURE_MSS": "Accuse de lecture",
}

_TRUE = {"Y", "YES", "O", "OUI", "1", "TRUE"}
_FALSE = {"N", "NO", "NON", "0", "FALSE"}


def parse_flag_value(value: str) -> bool | None:
    """Y/N (and a few spellings seen in the field) as a boolean; None when unreadable."""
    token = value.strip().upper()
    if token in _TRUE:
        return True
    if token in _FALSE:
        return False
    return None
