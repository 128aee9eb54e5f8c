"""The viewer gate's parser: every spelling of a study key, every repetition and encoding trick, at every level.

A request is either rebuilt into a URI that pins the study (the only string Orthanc ever receives) or refused.
"""

from __future__ import annotations

import pytest

from drimbox.web.viewer_request import NotUnderstood, parse_viewer_request

UID, OTHER = "1.2.3.4", "1.2.3.5"
S, INST = "5.6", "7.8"


@pytest.mark.parametrize("uri, rebuilt", [
    (f"/dicom-web/studies?StudyInstanceUID={UID}", f"/dicom-web/studies?StudyInstanceUID={UID}"),
    (f"/dicom-web/studies?0020000D={UID}", f"/dicom-web/studies?StudyInstanceUID={UID}"),
    (f"/dicom-web/studies?0020000d={UID}", f"/dicom-web/studies?StudyInstanceUID={UID}"),
    (f"/dicom-web/studies?%53tudyInstanceUID={UID}", f"/dicom-web/studies?StudyInstanceUID={UID}"),
    (f"/dicom-web/studies?limit=101&offset=0&fuzzymatching=false&includefield=00081030%2C00080060"
     f"&StudyInstanceUID={UID}&includefield=StudyDescription",
     f"/dicom-web/studies?StudyInstanceUID={UID}&includefield=00081030&includefield=00080060"
     "&includefield=StudyDescription&limit=101&offset=0&fuzzymatching=false"),
    (f"/dicom-web/studies?StudyInstanceUID={UID}&&includefield=all", f"/dicom-web/studies?StudyInstanceUID={UID}"
     "&includefield=all"),
    (f"/dicom-web/series?StudyInstanceUID={UID}&includefield=0008103e", f"/dicom-web/studies/{UID}/series"
     "?includefield=0008103E"),
    (f"/dicom-web/instances?0020000D={UID}", f"/dicom-web/studies/{UID}/instances"),
    (f"/dicom-web/studies/{UID}/series?includefield=0008103E", f"/dicom-web/studies/{UID}/series"
     "?includefield=0008103E"),
    (f"/dicom-web/studies/{UID}/series/", f"/dicom-web/studies/{UID}/series"),
    (f"/dicom-web/studies/{UID}/instances?limit=10", f"/dicom-web/studies/{UID}/instances?limit=10"),
    (f"/dicom-web/studies/{UID}/series/{S}/instances?offset=2",
     f"/dicom-web/studies/{UID}/series/{S}/instances?offset=2"),
    (f"/dicom-web/studies/{UID}", f"/dicom-web/studies/{UID}"),
    (f"/dicom-web/studies/{UID}/metadata", f"/dicom-web/studies/{UID}/metadata"),
    (f"/dicom-web/studies/{UID}/series/{S}/metadata", f"/dicom-web/studies/{UID}/series/{S}/metadata"),
    (f"/dicom-web/studies/{UID}/series/{S}/instances/{INST}", f"/dicom-web/studies/{UID}/series/{S}/instances/{INST}"),
    (f"/dicom-web/studies/{UID}/series/{S}/instances/{INST}/frames/1,2",
     f"/dicom-web/studies/{UID}/series/{S}/instances/{INST}/frames/1,2"),
    (f"/dicom-web/studies/{UID}/series/{S}/instances/{INST}/bulk/7fe00010",
     f"/dicom-web/studies/{UID}/series/{S}/instances/{INST}/bulk/7fe00010"),
    (f"/dicom-web/studies/{UID}/series/{S}/instances/{INST}/bulk/00540016/0/00181072",
     f"/dicom-web/studies/{UID}/series/{S}/instances/{INST}/bulk/00540016/0/00181072"),
])
def test_understood_requests_are_rebuilt_with_the_study_pinned(uri, rebuilt):
    request = parse_viewer_request(uri)
    assert request.study_uid == UID
    assert request.uri == rebuilt
    assert request.path == rebuilt.partition("?")[0]


@pytest.mark.parametrize("uri", [
    # spellings Orthanc's DICOMweb does not know (it would drop them and search the whole PACS)
    f"/dicom-web/studies?studyinstanceuid={UID}",
    f"/dicom-web/studies?STUDYINSTANCEUID={UID}",
    f"/dicom-web/studies?StudyInstanceUid={UID}",
    f"/dicom-web/studies?%73tudyinstanceuid={UID}",
    f"/dicom-web/studies?0020000D={UID}&studyinstanceuid={OTHER}",
    f"/dicom-web/studies?StudyInstanceUID={UID}&PatientID=IPP1",
    f"/dicom-web/studies?StudyInstanceUID={UID}&00100020=IPP1",
    f"/dicom-web/studies?StudyInstanceUID={UID}&Limit=1",
    f"/dicom-web/studies?StudyInstanceUID={UID}&IncludeField=all",
    "/dicom-web/studies?00100020=IPP1&limit=101",
    # repeated keys, lists, wildcards, empty values
    f"/dicom-web/studies?StudyInstanceUID={UID}&StudyInstanceUID={OTHER}",
    f"/dicom-web/studies?StudyInstanceUID={UID}&StudyInstanceUID={UID}",
    f"/dicom-web/studies?StudyInstanceUID={UID}&0020000D={OTHER}",
    f"/dicom-web/studies?0020000d={UID}&0020000D={OTHER}",
    f"/dicom-web/studies?StudyInstanceUID={UID},{OTHER}",
    f"/dicom-web/studies?StudyInstanceUID={UID}%2C{OTHER}",
    f"/dicom-web/studies?StudyInstanceUID={UID}%5C{OTHER}",
    f"/dicom-web/studies?StudyInstanceUID={UID}*",
    "/dicom-web/studies?StudyInstanceUID=*",
    "/dicom-web/studies?StudyInstanceUID=1.2.3.?",
    "/dicom-web/studies?StudyInstanceUID=1.2.3.%3F",
    "/dicom-web/studies?StudyInstanceUID=",
    "/dicom-web/studies?StudyInstanceUID",
    f"/dicom-web/studies?StudyInstanceUID={UID}&limit=1&limit=1000",
    f"/dicom-web/studies?StudyInstanceUID={UID}&limit=-1",
    f"/dicom-web/studies?StudyInstanceUID={UID}&fuzzymatching=yes",
    f"/dicom-web/studies?StudyInstanceUID={UID}&includefield=",
    f"/dicom-web/studies?StudyInstanceUID={UID}&includefield=00100010.00100020",
    "/dicom-web/studies",
    "/dicom-web/studies?",
    # separators, encodings, fragments, control characters
    f"/dicom-web/studies?StudyInstanceUID={UID};PatientID=IPP1",
    f"/dicom-web/studies?StudyInstanceUID={UID}%26PatientID%3DIPP1",
    f"/dicom-web/studies?StudyInstanceUID={UID}%00",
    f"/dicom-web/studies?StudyInstanceUID={UID}%0a",
    f"/dicom-web/studies?StudyInstanceUID=+{UID}",
    f"/dicom-web/studies?StudyInstanceUID={UID}#x",
    f"/dicom-web/studies?StudyInstanceUID={UID}%FF",
    f"/dicom-web/studies?Study%49nstanceUID%3D{UID}",
    # QIDO below a study: the study is in the path, any other study key is refused
    f"/dicom-web/studies/{UID}/series?StudyInstanceUID={OTHER}",
    f"/dicom-web/studies/{UID}/series?0020000D={UID}",
    f"/dicom-web/studies/{UID}/series?SeriesInstanceUID={S}",
    f"/dicom-web/studies/{UID}/series/{S}/instances?PatientID=IPP1",
    f"/dicom-web/studies/{UID}/series/{S}/instances?studyinstanceuid={OTHER}",
    # root series/instance searches must name exactly one study
    "/dicom-web/series",
    "/dicom-web/instances?limit=10",
    f"/dicom-web/series?studyinstanceuid={UID}",
    f"/dicom-web/series?StudyInstanceUID={UID}&StudyInstanceUID={OTHER}",
    f"/dicom-web/instances?StudyInstanceUID={UID}&PatientName=*",
    # a query on a retrieve, paths that are not one study's resources
    f"/dicom-web/studies/{UID}/series/{S}/metadata?StudyInstanceUID={OTHER}",
    f"/dicom-web/studies/{UID}/metadata?includefield=all",
    f"/dicom-web/studies/{UID}/../{OTHER}/series",
    f"/dicom-web/studies/{UID}/./series",
    f"/dicom-web/studies/{UID}%2F..%2F{OTHER}/series",
    f"/dicom-web/studies/{UID}%2fseries",
    f"/dicom-web/studies/{UID}\\..\\{OTHER}",
    f"/dicom-web/studies/{UID};x=1/series",
    f"/dicom-web/studies//{UID}/series",
    f"/dicom-web/studies/{UID},{OTHER}/series",
    "/dicom-web/studies/*/series",
    f"/dicom-web/studies/{UID}/series/{S}/frames/1",
    f"/dicom-web/studies/{UID}/series/{S}/instances/{INST}/frames/0",
    f"/dicom-web/studies/{UID}/series/{S}/instances/{INST}/frames/",
    f"/dicom-web/studies/{UID}/series/{S}/instances/{INST}/bulk/../../{OTHER}",
    f"/dicom-web/studies/{UID}/instances/{INST}",
    f"/dicom-web/studies/{UID}/thumbnail",
    "/dicom-web/patients",
    "/dicom-web/",
    "/dicom-web",
    f"/dicom-web/studies/{UID} ",
    f"/app/explorer.html?{UID}",
    f"/dicom-web/studies/{'1.' * 40}1/series",
])
def test_anything_else_is_refused(uri):
    with pytest.raises(NotUnderstood):
        parse_viewer_request(uri)


def test_refusal_messages_are_fixed_texts_without_quotes():
    # nginx writes the reason into a JSON body: it must never carry the request's own characters
    for uri in ('/dicom-web/studies?a"b=1', '/dicom-web/studies?StudyInstanceUID="x"', '/dicom-web/"/x'):
        with pytest.raises(NotUnderstood) as refused:
            parse_viewer_request(uri)
        assert '"' not in str(refused.value) and "\\" not in str(refused.value)
