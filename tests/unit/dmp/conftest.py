from __future__ import annotations

import pytest
from dmp_testdata import make_kos, make_report

from drimbox.config.sections import IdentitySettings
from drimbox.crypto.pki import issue_certificate, make_name, make_root_ca
from drimbox.dmp.settings import DmpSettings
from drimbox.dmp.signing import SigningMaterial
from drimbox.reports.model import Report


@pytest.fixture(scope="session")
def ca():
    return make_root_ca()


@pytest.fixture(scope="session")
def signing(ca) -> SigningMaterial:
    issued = issue_certificate(ca, make_name("SIGN box-a", ou="3123456789012345"), profile="signing")
    return SigningMaterial(key=issued.key, cert=issued.cert, chain=tuple(issued.chain))


@pytest.fixture
def settings() -> DmpSettings:
    return DmpSettings(base_url="https://dmp.test/dmp")


@pytest.fixture
def identity() -> IdentitySettings:
    return IdentitySettings()


@pytest.fixture
def kos() -> bytes:
    return make_kos()


@pytest.fixture
def report() -> Report:
    return make_report()
