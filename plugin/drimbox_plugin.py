"""The file Orthanc loads (``PythonScript``): puts the box's virtualenv on the path and installs the adapter."""

import os
import site
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_SITE = os.environ.get("DRIMBOX_SITE_PACKAGES") or os.path.join(
    os.path.dirname(_HERE), ".venv", "lib", f"python{sys.version_info.major}.{sys.version_info.minor}", "site-packages")
site.addsitedir(_SITE)  # processes .pth files, so the editable install of the drimbox package is found

import orthanc  # noqa: E402

from drimbox import orthanc_adapter  # noqa: E402

BOX = orthanc_adapter.install(orthanc)
