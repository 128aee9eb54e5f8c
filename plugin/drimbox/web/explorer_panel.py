"""The DRIMbox panel of Orthanc Explorer 1's study page: what the box did with the study, and the operator's actions.

Orthanc 1.10 lets a plugin add JavaScript to Orthanc Explorer (``ExtendOrthancExplorer``). The script below asks
the box for the panel as an HTML fragment rendered here (every value escaped by jinja2), inserts it, and sends the
actions as same-origin JSON POSTs with the session cookie, so nginx's admin decision checks their Origin.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import jinja2

from drimbox.audit.event import ENTRY_DMP, ENTRY_OPERATOR
from drimbox.store import Store
from drimbox.store.records import PublicationState
from drimbox.web.http import Request, Response, Router
from drimbox.web.plain_words import explain, label, language, translator

TEMPLATES = jinja2.Environment(loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
                                autoescape=True)
TEMPLATES.filters["ts"] = lambda t: time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else ""

# The panel's behaviour, shared by Orthanc Explorer's study page and the box's own study page: ``studyUid`` is
# set by the page's glue, the panel is #drimbox-panel. Absolute paths: both pages live on the admin entry's root.
_PANEL_CORE = r"""
  function lang() { return (navigator.language || 'fr').slice(0, 2) === 'en' ? 'en' : 'fr'; }

  function load() {
    var uid = studyUid;
    fetch('/drimbox/ui/panel/' + encodeURIComponent(uid) + '?lang=' + (window.drimboxLang || lang()),
          {credentials: 'same-origin'})
      .then(function (r) { return r.text(); })
      .then(function (html) { if (uid === studyUid) { document.getElementById('drimbox-panel').innerHTML = html; } });
  }

  function say(text, bad) {
    var out = document.getElementById('drimbox-outcome');
    if (out) { out.textContent = text; out.style.color = bad ? '#a00' : '#070'; }
  }

  function post(url, body) {
    return fetch(url, {method: 'POST', credentials: 'same-origin', headers: {'Content-Type': 'application/json'},
                       body: JSON.stringify(body || {})})
      .then(function (r) { return r.json().then(function (d) { return {ok: r.ok, data: d}; }); });
  }

  function showLink(url) {
    var input = document.getElementById('drimbox-link');
    input.style.display = '';
    input.value = url;
    input.select();
  }

  function run(button) {
    var action = button.getAttribute('data-drimbox-action');
    var uid = encodeURIComponent(studyUid);
    if (action === 'viewer-link') {
      return fetch('/drimbox/studies/' + uid + '/viewer-link', {credentials: 'same-origin'})
        .then(function (r) { return r.json(); }).then(function (d) {
          if (!d.url) { return say(d.error || '?', true); }
          showLink(d.url);
          if (navigator.clipboard) { navigator.clipboard.writeText(d.url).catch(function () {}); }
        });
    }
    if (action === 'patient-link') {
      return post('/drimbox/studies/' + uid + '/patient-link', {}).then(function (res) {
        if (!res.ok) { return say(res.data.error || '?', true); }
        showLink(res.data.url);
      });
    }
    var body = {};
    var job = button.getAttribute('data-publication');
    if (job) { body.publication = parseInt(job, 10); }
    return post('/drimbox/ui/studies/' + uid + '/actions/' + action, body).then(function (res) {
      say(res.data.message || res.data.error || '', !res.ok);
      load();
    });
  }

  function onClick(event) {
    var target = event.target;
    if (target.classList.contains('drimbox-yes')) {
      var pending = target.parentNode.drimboxButton;
      target.parentNode.remove();
      run(pending);
      return;
    }
    if (target.classList.contains('drimbox-no')) { target.parentNode.remove(); return; }
    if (!target.hasAttribute('data-drimbox-action')) { return; }
    event.preventDefault();
    if (!target.hasAttribute('data-confirm')) { run(target); return; }
    var old = document.querySelector('#drimbox-panel .drimbox-confirm');
    if (old) { old.remove(); }
    var bar = document.createElement('div');
    bar.className = 'drimbox-confirm';
    bar.style.cssText = 'margin:6px 0;padding:6px;background:#fff;border:1px solid #999';
    bar.drimboxButton = target;
    var text = document.createElement('span');
    text.textContent = target.getAttribute('data-confirm') + ' ';
    var english = (window.drimboxLang || lang()) === 'en';
    var yes = document.createElement('button'); yes.className = 'drimbox-yes';
    yes.textContent = english ? 'Confirm' : 'Confirmer';
    var no = document.createElement('button'); no.className = 'drimbox-no';
    no.textContent = english ? 'Cancel' : 'Annuler';
    bar.appendChild(text); bar.appendChild(yes); bar.appendChild(no);
    target.parentNode.insertBefore(bar, target.nextSibling);
  }

  function busy() {
    var p = document.getElementById('drimbox-panel');
    return p && p.querySelector('[data-drimbox-busy]') && !p.querySelector('.drimbox-confirm');
  }
"""

# Orthanc Explorer 1 (jQuery 1.x and jQuery Mobile 1.0: ``.live``): a DRIMbox button on the home page, the panel
# at the top of each study page.
EXPLORER_EXTENSION = "(function () {\n  var studyUid = null, refresh = null;\n" + _PANEL_CORE + r"""
  $('#lookup').live('pagebeforecreate', function () {
    var b = $('<a>').attr('href', '../drimbox/ui').attr('data-role', 'button').attr('data-icon', 'grid')
      .attr('data-theme', 'e').attr('rel', 'external').text('DRIMbox');
    b.insertBefore($('#lookup').find('form'));
  });

  $('#study').live('pagebeforecreate', function () {
    var panel = document.createElement('div');
    panel.id = 'drimbox-panel';
    panel.style.cssText = 'border:2px solid #e5c100;border-radius:6px;padding:8px 12px;margin:0 0 12px 0;' +
      'background:#fffbe6;font-size:14px';
    panel.addEventListener('click', onClick);
    $('#list-series').parent().prepend(panel);
  });

  $('#study').live('pageshow', function () {
    studyUid = null;
    document.getElementById('drimbox-panel').innerHTML = '…';
    $.ajax({url: '../studies/' + $.mobile.pageData.uuid, dataType: 'json', success: function (s) {
      studyUid = s.MainDicomTags.StudyInstanceUID;
      load();
    }});
    if (refresh === null) {
      refresh = window.setInterval(function () {
        if (studyUid && $.mobile.activePage && $.mobile.activePage.attr('id') === 'study' && busy()) { load(); }
      }, 2000);
    }
  });
})();
"""


# The same panel on the box's own study page (``/drimbox/ui/studies/{uid}``): the page's #drimbox-panel carries
# the study and the language as attributes (escaped by the template), so nothing is written into the script.
STUDY_PAGE_SCRIPT = "(function () {\n  var panel = document.getElementById('drimbox-panel');\n" + r"""
  var studyUid = panel.getAttribute('data-study');
  window.drimboxLang = panel.getAttribute('data-lang');
""" + _PANEL_CORE + r"""
  panel.addEventListener('click', onClick);
  window.setInterval(function () { if (busy()) { load(); } }, 2000);
})();
"""


_ATTEMPT_WORDS = {200: ("Réussi", "Succeeded"), 503: ("Échec, nouvel essai prévu", "Failed, will be tried again"),
                  422: ("Refusé", "Refused")}


class ExplorerPanel:
    def __init__(self, store: Store, *, dmp_enabled: bool, clock: Callable[[], float] = time.time):
        self.store = store
        self.dmp_enabled = dmp_enabled
        self.clock = clock

    def register(self, router: Router) -> None:
        router.add("GET", "/drimbox/ui/panel/{study_uid}", self.panel)

    def panel(self, request: Request) -> Response:
        lang = language(request.query, request.headers)
        context = self.context(request.params["study_uid"], lang)
        html = TEMPLATES.get_template("explorer_panel.html.j2").render(**context)
        return Response(200, html.encode(), "text/html; charset=utf-8", {"Cache-Control": "no-store"})

    def context(self, study_uid: str, lang: str) -> dict:
        study = self.store.get_study(study_uid)
        reports = self.store.reports_for_study(study_uid)
        manifests = self.store.manifests_for_study(study_uid)
        publications = self.store.list_publications(study_uid=study_uid)
        current = next((m for m in manifests if m.status == "current"), None)
        now = self.clock()
        t = translator(lang)
        attempts = []
        for job in publications:
            failing = job.state == PublicationState.QUEUED and bool(job.last_error)
            if failing:
                wait = max(0, round(job.next_attempt_at - now))
                state = t(f"En échec, nouvel essai dans {wait} s", f"Failing, next attempt in {wait} s")
            else:
                state = label("publication", job.state, lang)
            attempts.append({
                "id": job.id, "action": label("action", job.action, lang), "state": state, "raw_state": job.state,
                "failing": failing or job.state == PublicationState.FAILED, "attempts": job.attempts,
                "error": explain(job.last_error, lang), "detail": job.last_error, "kos_uid": job.kos_uid,
                "entry": job.dmp_entry_uuid or "", "updated_at": job.updated_at,
                "can_retry": job.state in (PublicationState.FAILED, PublicationState.CANCELLED) or failing,
                "can_cancel": job.state in (PublicationState.QUEUED, PublicationState.FAILED)})
        approved = any(m.dmp_status == "approved" for m in manifests)
        history = []
        for event in self.store.search_audit(study_uid=study_uid, entry_point=ENTRY_DMP, limit=30):
            number, _, error = str(event.get("reason", "")).partition(": ")
            status = int(event.get("outcome_status") or 0)
            history.append({"when": event.get("when", ""), "what": label("action", event["action"][4:], lang),
                            "attempt": number.removeprefix("attempt "), "ok": status < 400,
                            "outcome": t(*_ATTEMPT_WORDS.get(status, ("Erreur", "Error"))),
                            "error": explain(error, lang), "detail": error})
        actions = [{"when": e.get("when", ""), "operator": e.get("operator", ""), "action": e.get("action", ""),
                    "status": e.get("outcome_status"), "message": e.get("reason", "")}
                   for e in self.store.search_audit(study_uid=study_uid, entry_point=ENTRY_OPERATOR, limit=20)]
        return {
            "history": history, "operator_actions": actions,
            "t": t, "lang": lang, "study_uid": study_uid, "known": study is not None or bool(manifests or reports),
            "state": label("study", study.state if study else "unknown", lang),
            "problem": explain(study.problem, lang) if study else "", "problem_detail": study.problem if study else "",
            "reports": [{"id": r.report_id, "state": label("report", r.state, lang), "received_at": r.received_at,
                         "problem": r.problem} for r in reports],
            "current": current,
            "dmp_state": label("dmp", current.dmp_status if current else "", lang),
            "manifests": [{"version": m.version, "kos_uid": m.kos_uid, "status": label("manifest", m.status, lang),
                           "dmp": label("dmp", m.dmp_status, lang), "entry": m.dmp_entry_uuid or "",
                           "instances": m.instance_count, "created_at": m.created_at} for m in manifests],
            "attempts": attempts,
            "busy": any(j.state == PublicationState.QUEUED for j in publications),
            "can_republish": self.dmp_enabled and current is not None and current.dmp_status != "approved"
            and not any(j.state == PublicationState.QUEUED for j in publications),
            "can_withdraw": self.dmp_enabled and approved,
        }
