"""The box's own study page (admin entry): the DRIMbox panel of Orthanc Explorer, plus the study's files."""

from __future__ import annotations

from drimbox.web.explorer_panel import STUDY_PAGE_SCRIPT, TEMPLATES, ExplorerPanel
from drimbox.web.http import Request, Response, Router
from drimbox.web.plain_words import language


class OperatorUi:
    def __init__(self, panel: ExplorerPanel):
        self.panel = panel

    def register(self, router: Router) -> None:
        router.add("GET", "/drimbox/ui/studies/{study_uid}", self.study)

    def study(self, request: Request) -> Response:
        lang = language(request.query, request.headers)
        context = self.panel.context(request.params["study_uid"], lang)
        html = TEMPLATES.get_template("study.html.j2").render(**context, script=STUDY_PAGE_SCRIPT)
        return Response(200, html.encode(), "text/html; charset=utf-8", {"Cache-Control": "no-store"})
