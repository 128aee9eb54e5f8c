from __future__ import annotations

import pytest

from drimbox.crypto.pki import create_test_pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> dict:
    return create_test_pki(tmp_path_factory.mktemp("pki"))
