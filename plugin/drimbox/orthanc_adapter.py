"""The only module that touches ``orthanc``: registers callbacks and turns them into plain calls on a Box.

Callbacks never block: the HTTP filter is a pure decision and the REST callback answers from the store (worker
threads do the network work). Nothing runs as Orthanc stores an instance: no change callback and no
stored-instance callback; the box follows Orthanc's change log through its REST API (see :func:`install`) and
reads what a manifest needs when the study is stable (:mod:`drimbox.pacs.reader`).
"""

from __future__ import annotations

import atexit
import json
import logging

from drimbox.box import Box
from drimbox.config import SettingsError, check_deployment, load_settings
from drimbox.metrics import MetricsPusher
from drimbox.util.one_line import OneLineFormatter, one_line
from drimbox.web.http import Request, Response
from drimbox.web.explorer_panel import EXPLORER_EXTENSION

METHODS = {1: "GET", 2: "POST", 3: "PUT", 4: "DELETE"}
log = logging.getLogger("drimbox")


class _OrthancLogHandler(logging.Handler):
    def __init__(self, orthanc):
        super().__init__()
        self.orthanc = orthanc

    def emit(self, record: logging.LogRecord) -> None:
        message = self.format(record)
        if record.levelno >= logging.ERROR:
            self.orthanc.LogError(message)
        elif record.levelno >= logging.WARNING:
            self.orthanc.LogWarning(message)
        else:
            self.orthanc.LogInfo(message)


def install(orthanc) -> Box:
    handler = _OrthancLogHandler(orthanc)
    handler.setFormatter(OneLineFormatter("%(name)s: %(message)s"))
    root = logging.getLogger("drimbox")
    root.addHandler(handler)
    root.setLevel(logging.INFO)

    configuration = json.loads(orthanc.GetConfiguration())
    try:
        settings = load_settings(configuration)
        check_deployment(settings, configuration)
    except SettingsError as error:
        orthanc.LogError(one_line(f"DRIMbox configuration error: {error}"))
        raise
    orthanc_url = settings.orthanc_url
    if configuration.get("HttpPort") and orthanc_url == "http://127.0.0.1:8042":
        orthanc_url = f"http://127.0.0.1:{configuration['HttpPort']}"
    box = Box(settings, orthanc_url=orthanc_url, stable_age_seconds=float(configuration.get("StableAge") or 60))
    # no refresh callback in this plugin version: a thread pushes the figures into /tools/metrics-prometheus
    metrics = MetricsPusher(box.metrics, lambda name, value: orthanc.SetMetricsValue(
        name, value, orthanc.MetricsType.DEFAULT))

    # No change callback: orthanc-python 4.0 would call Python once per change, i.e. once per stored instance
    # (NewInstance), each call creating a thread state under the GIL: ~12% of a bare Orthanc's CPU on small
    # images; and no stored-instance callback, ~3% even empty (bench/ingest.py). The box starts once Orthanc's
    # REST API answers, follows /changes from its cursor (looking for the stable study StableAge after the last
    # NewInstance it reads there) and stops when the interpreter finalizes.
    box.start_when_orthanc_answers(then=metrics.start)
    atexit.register(box.stop)
    atexit.register(metrics.stop)  # atexit runs the last registered first

    def http_filter(uri, **request):
        return box.allows(uri, METHODS.get(request.get("method") or 0, "OTHER"), request.get("headers") or {})

    def rest(output, uri, **request):
        query = request.get("get") or {}
        response = box.handle_http(Request(
            method=request.get("method", "GET"), path=uri, query=dict(query),
            headers=dict(request.get("headers") or {}), body=request.get("body") or b""))
        send(output, response)

    orthanc.RegisterIncomingHttpRequestFilter(http_filter)
    orthanc.RegisterRestCallback("/drimbox/(.*)", rest)
    orthanc.RegisterRestCallback("/drimbox", rest)
    orthanc.ExtendOrthancExplorer(EXPLORER_EXTENSION)
    return box


def send(output, response: Response) -> None:
    for cookie in response.cookies:
        name, _, value_and_attributes = cookie.partition("=")
        output.SetCookie(name, value_and_attributes)
    if response.parts is not None:
        # Orthanc refuses any header but Set-Cookie on a multipart answer
        for name, value in response.headers.items():
            if name.lower() == "set-cookie":
                output.SetHttpHeader(name, value)
        output.StartMultipartAnswer("related", response.content_type)
        for part in response.parts:
            output.SendMultipartItem(part)
        return
    if response.status == 405:
        # Orthanc refuses 405 through SendHttpStatus; its dedicated call sends no body: nginx adds the JSON one
        output.SendMethodNotAllowed(response.headers.get("Allow", ""))
        return
    body = response.body if isinstance(response.body, bytes) else response.body.encode()
    for name, value in response.headers.items():
        output.SetHttpHeader(name, value)
    if response.status == 200:
        output.AnswerBuffer(body, response.content_type)
        return
    output.SetHttpHeader("Content-Type", response.content_type)
    text = body.decode("utf-8", errors="replace")
    output.SendHttpStatus(response.status, text, len(text.encode("utf-8")))
