"""The file Orthanc loads (``PythonScript``): puts the box's virtualenv on the path and installs the adapter."""

import os
import site
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_SITE = os.environ.get("DRIMBOX_SITE_PACKAGES") or os.path.join(
    os.path.dirname(_HERE), ".venv", "lib", f"python{sys.version_info.major}.{sys.version_info.minor}", "site-packages")
_BEFORE = list(sys.path)
site.addsitedir(_SITE)  # processes .pth files, so the editable install of the drimbox package is found
# The venv goes first: Debian's dist-packages (e.g. an older python3-cryptography) must not shadow it.
sys.path[:] = [p for p in sys.path if p not in _BEFORE] + _BEFORE

import orthanc  # noqa: E402

from drimbox.util.embedded import keep_pixel_codecs_out  # noqa: E402
from drimbox.util.memory import keep_large_buffers_mapped  # noqa: E402

keep_pixel_codecs_out()  # before the adapter imports pydicom: ~23 MB less in Orthanc's process
keep_large_buffers_mapped()  # manifests of large studies must not leave Orthanc's heap fragmented

from drimbox import orthanc_adapter  # noqa: E402

BOX = orthanc_adapter.install(orthanc)
