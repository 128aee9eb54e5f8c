"""Settings of a test box pointing at the DMP simulator, from a `create_test_pki` index."""

from __future__ import annotations

from drimbox.dmp.settings import DmpSettings


def box_settings(pki: dict, url: str, box: str = "box-a", **changes) -> DmpSettings:
    entry = pki["boxes"][box]
    values = dict(base_url=url, client_cert=entry["auth"]["fullchain"], client_key=entry["auth"]["key"],
                  ca_bundle=pki["ca_bundle"], signing_cert=entry["signing"]["fullchain"],
                  signing_key=entry["signing"]["key"], timeout_seconds=10.0)
    values.update(changes)
    return DmpSettings(**values)
