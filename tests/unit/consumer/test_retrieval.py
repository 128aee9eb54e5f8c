"""Retrieve URLs of a KOS against the whitelist: rebuilt from checked parts, unlisted hosts refused."""

from __future__ import annotations

from drimbox.consumer.retrieval import plan_retrieval
from drimbox.kos.reader import ManifestSeries, ManifestSummary
from drimbox.trust.whitelist import Domain, domains_with_db_host

STUDY = "1.2.3.4"
DOMAINS = [Domain("a", "db-a.example.fr", "vi-a.example.fr"), Domain("b", "localhost:8543", "localhost:8544")]


def trusted(host: str) -> bool:
    return bool(domains_with_db_host(DOMAINS, host))


def manifest(*urls: str) -> ManifestSummary:
    series = [ManifestSeries(f"{STUDY}.{i}", url, [("1.2.840.10008.5.1.4.1.1.2", f"{STUDY}.{i}.1")])
              for i, url in enumerate(urls, 1)]
    return ManifestSummary("9.9.9", STUDY, "279035121518989", "X^Y", series=series)


def test_whitelisted_hosts_give_rebuilt_series_urls():
    plan = plan_retrieval(manifest(f"https://DB-A.example.fr/wado-rs/studies/{STUDY}/series/{STUDY}.1",
                                   f"https://localhost:8543/wado-rs/studies/{STUDY}/series/{STUDY}.2/"), trusted)
    assert plan.usable and not plan.refused_hosts
    assert [s.url for s in plan.series] == [
        f"https://db-a.example.fr/wado-rs/studies/{STUDY}/series/{STUDY}.1",
        f"https://localhost:8543/wado-rs/studies/{STUDY}/series/{STUDY}.2"]
    assert plan.series[0].instance_count == 1


def test_an_unlisted_host_refuses_the_exam_and_is_named():
    plan = plan_retrieval(manifest(f"https://db-a.example.fr/wado-rs/studies/{STUDY}/series/{STUDY}.1",
                                   f"https://evil.example.com/wado-rs/studies/{STUDY}/series/{STUDY}.2",
                                   f"https://db-a.example.fr:8443/wado-rs/studies/{STUDY}/series/{STUDY}.3"),
                          trusted)
    assert not plan.usable
    assert plan.refused_hosts == ["evil.example.com", "db-a.example.fr:8443"]


def test_urls_that_cannot_be_trusted_as_written_are_malformed():
    bad = [f"http://db-a.example.fr/wado-rs/studies/{STUDY}/series/{STUDY}.1",  # not TLS
           f"https://db-a.example.fr/wado-rs/studies/9.9/series/{STUDY}.2",  # another study
           f"https://db-a.example.fr/wado-rs/studies/{STUDY}/series/{STUDY}.1",  # another series than listed
           f"https://u:p@db-a.example.fr/wado-rs/studies/{STUDY}/series/{STUDY}.4",
           f"https://db-a.example.fr/wado-rs/studies/{STUDY}/series/{STUDY}.5?x=1",
           f"https://db-a.example.fr/a/../b/studies/{STUDY}/series/{STUDY}.6",
           "not a url"]
    plan = plan_retrieval(manifest(*bad), trusted)
    assert not plan.usable and plan.series == [] and len(plan.malformed) == len(bad)
