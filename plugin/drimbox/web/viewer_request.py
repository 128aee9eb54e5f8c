"""What a viewer's DICOMweb request asks for, parsed strictly, and the URI Orthanc receives instead of it.

Orthanc's DICOMweb drops query keys it does not know (``studyinstanceuid`` in lower case, a percent-encoded
key...) and then searches without them: a query string approved as text and forwarded as text can turn a
one-study search into a search of the whole PACS. So nothing of the browser's request string reaches Orthanc:
the path is parsed into its resource shape and UIDs, the query into approved keys with validated values, and
the Orthanc URI is rebuilt from those, with the study pinned in the path or in a single canonical
``StudyInstanceUID``. Anything else is refused (:class:`NotUnderstood`).

Accepted (``{u}`` a study, ``{s}`` a series, ``{i}`` an instance UID)::

    QIDO  /dicom-web/studies?StudyInstanceUID={u}      (also 0020000D; the only way to name the study)
          /dicom-web/series?StudyInstanceUID={u}       -> /dicom-web/studies/{u}/series
          /dicom-web/instances?StudyInstanceUID={u}    -> /dicom-web/studies/{u}/instances
          /dicom-web/studies/{u}/series, /studies/{u}/instances, /studies/{u}/series/{s}/instances
          + includefield (repeatable; keywords, tags or ``all``), limit, offset, fuzzymatching (once each)
    WADO  /dicom-web/studies/{u}[/series/{s}[/instances/{i}]][/metadata|/rendered]
          .../instances/{i}/frames/{n[,n...]}, .../instances/{i}/bulk/{tag or index}...   (no query)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlencode

DICOMWEB_ROOT = "/dicom-web"
UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")
UID_MAX = 64
_KEYWORD = re.compile(r"^[A-Z][A-Za-z0-9]{0,63}$")
_TAG = re.compile(r"^[0-9A-Fa-f]{8}$")
_NUMBER = re.compile(r"^[0-9]{1,7}$")
_FRAMES = re.compile(r"^[1-9][0-9]{0,6}(,[1-9][0-9]{0,6}){0,99}$")
_BULK_SEGMENT = re.compile(r"^([0-9A-Fa-f]{8}|[0-9]{1,6})$")
STUDY_UID_KEYWORD = "StudyInstanceUID"
STUDY_UID_TAG = "0020000D"
QIDO_LEVELS = ("series", "instances")


class NotUnderstood(ValueError):
    """The request is not one the viewer gate can rebuild exactly; the message says why (fixed text only)."""


@dataclass(frozen=True)
class ViewerRequest:
    study_uid: str
    path: str  # the Orthanc path a grant covers (Orthanc's filter sees the path, not the query)
    query: str = ""  # canonical, rebuilt from approved keys

    @property
    def uri(self) -> str:
        return self.path + ("?" + self.query if self.query else "")


@dataclass
class _Query:
    study_uids: list[str]
    includefield: list[str]
    single: dict[str, str]


def parse_viewer_request(original_uri: str) -> ViewerRequest:
    """The one-study request ``original_uri`` (nginx's ``$request_uri``) designates, rebuilt; or NotUnderstood."""
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in original_uri) or "#" in original_uri or "\\" in original_uri:
        raise NotUnderstood("control character, space, backslash or fragment in the request")
    raw_path, _, raw_query = original_uri.partition("?")
    segments = _path_segments(raw_path)
    query = _parse_query(raw_query)
    if segments[0] == "studies" and len(segments) == 1:
        return _root_qido(query, "")
    if segments[0] in QIDO_LEVELS and len(segments) == 1:
        return _root_qido(query, segments[0])
    if segments[0] != "studies":
        raise NotUnderstood("not a DICOMweb resource of one study")
    study = _uid(segments[1])
    rest = segments[2:]
    if _is_qido(rest):
        if query.study_uids:
            raise NotUnderstood("StudyInstanceUID in the query of a study's own path")
        return ViewerRequest(study, _join(["studies", study, *rest]), _canonical(query))
    _check_wado(rest)
    if query.study_uids or query.includefield or query.single:
        raise NotUnderstood("a query string on a WADO-RS retrieve")
    return ViewerRequest(study, _join(["studies", study, *rest]))


def _path_segments(raw_path: str) -> list[str]:
    # UIDs, numbers and fixed words never need percent-encoding: an encoded path is someone playing with it
    if "%" in raw_path or ";" in raw_path:
        raise NotUnderstood("encoded characters or parameters in the path")
    if not raw_path.startswith(DICOMWEB_ROOT + "/"):
        raise NotUnderstood("not a DICOMweb path")
    segments = raw_path[len(DICOMWEB_ROOT) + 1:].split("/")
    if segments and segments[-1] == "" and len(segments) > 1:
        segments = segments[:-1]  # one trailing slash
    if any(s in ("", ".", "..") for s in segments):
        raise NotUnderstood("empty or dot segment in the path")
    return segments


def _uid(text: str) -> str:
    if len(text) > UID_MAX or not UID_RE.match(text):
        raise NotUnderstood("not a single DICOM UID")
    return text


def _is_qido(rest: list[str]) -> bool:
    if len(rest) == 1:
        return rest[0] in QIDO_LEVELS
    if len(rest) == 3 and rest[0] == "series" and rest[2] == "instances":
        _uid(rest[1])
        return True
    return False


def _check_wado(rest: list[str]) -> None:
    """``[series/{s}[/instances/{i}]][/metadata|/rendered|/frames/{n}|/bulk/...]`` after ``studies/{u}``."""
    position = 0
    for level in ("series", "instances"):
        if len(rest) >= position + 2 and rest[position] == level:
            _uid(rest[position + 1])
            position += 2
        else:
            break
    tail = rest[position:]
    if not tail or tail in (["metadata"], ["rendered"]):
        return
    if position == 4 and len(tail) == 2 and tail[0] == "frames" and _FRAMES.match(tail[1]):
        return
    if position == 4 and len(tail) >= 2 and tail[0] == "bulk" and all(_BULK_SEGMENT.match(s) for s in tail[1:]):
        return
    raise NotUnderstood("not a WADO-RS resource of the study")


def _parse_query(raw_query: str) -> _Query:
    query = _Query([], [], {})
    for piece in raw_query.split("&") if raw_query else []:
        if not piece:
            continue
        raw_key, equals, raw_value = piece.partition("=")
        if not equals:
            raise NotUnderstood("a query key without a value")
        key, value = _decode(raw_key), _decode(raw_value)
        if key == STUDY_UID_KEYWORD or (_TAG.match(key) and key.upper() == STUDY_UID_TAG):
            query.study_uids.append(_uid(value))
        elif key == "includefield":
            query.includefield.extend(_include_fields(value))
        elif key in ("limit", "offset", "fuzzymatching"):
            if key in query.single:
                raise NotUnderstood("a repeated query key")
            if key == "fuzzymatching" and value not in ("true", "false"):
                raise NotUnderstood("fuzzymatching must be true or false")
            if key != "fuzzymatching" and not _NUMBER.match(value):
                raise NotUnderstood("limit and offset must be small non-negative integers")
            query.single[key] = value
        else:
            raise NotUnderstood("a query key the viewer gate does not know")
    if len(query.study_uids) > 1:
        raise NotUnderstood("StudyInstanceUID given more than once")
    return query


def _decode(text: str) -> str:
    try:
        decoded = unquote(text, errors="strict")
    except UnicodeDecodeError:
        raise NotUnderstood("badly percent-encoded query") from None
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in decoded) or "+" in text:
        raise NotUnderstood("control character or space in the query")
    return decoded


def _include_fields(value: str) -> list[str]:
    fields = value.split(",")
    for field in fields:
        if field != "all" and not _KEYWORD.match(field) and not _TAG.match(field):
            raise NotUnderstood("includefield must list attribute keywords or tags")
    return [f.upper() if _TAG.match(f) else f for f in fields]


def _root_qido(query: _Query, level: str) -> ViewerRequest:
    if len(query.study_uids) != 1:
        raise NotUnderstood("a search that does not name exactly one study")
    study = query.study_uids[0]
    if level:
        return ViewerRequest(study, _join(["studies", study, level]), _canonical(query))
    return ViewerRequest(study, DICOMWEB_ROOT + "/studies", _canonical(query, study))


def _canonical(query: _Query, study: str = "") -> str:
    pairs: list[tuple[str, str]] = [(STUDY_UID_KEYWORD, study)] if study else []
    pairs += [("includefield", field) for field in query.includefield]
    pairs += [(key, query.single[key]) for key in ("limit", "offset", "fuzzymatching") if key in query.single]
    return urlencode(pairs)


def _join(segments: list[str]) -> str:
    return DICOMWEB_ROOT + "/" + "/".join(segments)
