"""The operator's pages (admin entry), reached from Orthanc Explorer: studies, problems, the DMP queue."""

from __future__ import annotations

import time
from pathlib import Path

import jinja2

from drimbox.web.http import Request, Response, Router

_TEMPLATES = jinja2.Environment(loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
                                autoescape=True)
_TEMPLATES.filters["ts"] = lambda t: time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else ""


class OperatorUi:
    def __init__(self, store, study_status, status):
        self.store = store
        self.study_status = study_status
        self.status = status

    def register(self, router: Router) -> None:
        router.add("GET", "/drimbox/ui", self.home)
        router.add("GET", "/drimbox/ui/studies/{study_uid}", self.study)

    def home(self, request: Request) -> Response:
        return _page("operator.html.j2", title="DRIMbox — tableau de bord", status=self.status(),
                     studies=[s.to_json() for s in self.store.list_studies(limit=100)],
                     publications=[p.to_json() for p in self.store.list_publications(limit=50)],
                     messages=[m.to_json() for m in self.store.list_messages(limit=50, problems_only=True)])

    def study(self, request: Request) -> Response:
        uid = request.params["study_uid"]
        return _page("operator.html.j2", title=f"Étude {uid}", study=self.study_status(uid), status=None)


def _page(template: str, **context) -> Response:
    return Response(200, _TEMPLATES.get_template(template).render(**context).encode(), "text/html; charset=utf-8")
