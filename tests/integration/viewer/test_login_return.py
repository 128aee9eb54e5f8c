"""After a PSC login (simulator, real box), the browser goes back only to a path of the viewer host."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from .conftest import RADIOLOGIST, browser

pytestmark = pytest.mark.integration

TRICKS = [
    "//evil.example/", "///evil.example/", "https://evil.example/", "https:evil.example", "javascript:alert(1)",
    "/\\evil.example", "\\\\evil.example", "/\\/evil.example", "\\/evil.example",
    "/\t/evil.example", "\t//evil.example", "/\r\n/evil.example", "/\n/evil.example",
    "/%09/evil.example", "/%0d%0aSet-Cookie:%20x=1", "/%0a/evil.example", "/%5cevil.example",
    "/%2F%2Fevil.example", "%2F%2Fevil.example", "https%3A%2F%2Fevil.example", "evil.example",
]


def callback_location(session, box, return_value: str) -> str:
    """Start a login with ``return=<value>`` and follow the redirects up to the box's PSC callback."""
    url = box.vi_url + "/drimbox/psc/login?return=" + quote(return_value, safe="") + \
        f"&login_hint={RADIOLOGIST}&prompt=none"
    for _ in range(5):
        answer = session.get(url, allow_redirects=False, timeout=30)
        assert answer.status_code in (302, 303), (answer.status_code, answer.text[:300])
        if "/drimbox/psc/callback" in url:
            return answer.headers["Location"]
        url = answer.headers["Location"]
    raise AssertionError("the login never reached the box's callback")


def test_a_same_host_path_is_returned_to(viewer_box):
    assert callback_location(browser(viewer_box), viewer_box, "/viewer?StudyInstanceUIDs=1.2.3") == \
        "/viewer?StudyInstanceUIDs=1.2.3"


@pytest.mark.parametrize("trick", TRICKS + [quote(t, safe="") for t in TRICKS if "%" not in t])
def test_other_return_values_come_back_as_the_root(viewer_box, trick):
    assert callback_location(browser(viewer_box), viewer_box, trick) == "/"


@pytest.mark.parametrize("trick", ["//evil.example/", "/\t/evil.example", "/%5cevil.example", "https://evil.example"])
def test_the_activity_choice_does_not_redirect_off_site_either(viewer_box, trick):
    session = browser(viewer_box)
    callback_location(session, viewer_box, "/")  # logged in (the radiologist has one activity)
    page = session.get(viewer_box.vi_url + "/drimbox/psc/activity?return=" + quote(trick, safe=""), timeout=30)
    assert page.status_code == 200
    assert "evil.example" not in page.text
