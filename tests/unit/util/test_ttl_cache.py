import threading

import pytest

from drimbox.util.ttl_cache import TtlCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_after_the_ttl():
    clock = Clock()
    cache: TtlCache[str, int] = TtlCache(10, clock=clock)
    cache.put("a", 1)
    clock.now += 9.9
    assert cache.get("a") == 1
    clock.now += 0.1
    assert cache.get("a") is None
    assert len(cache) == 0


def test_an_entry_never_outlives_its_own_deadline():
    clock = Clock()
    cache: TtlCache[str, int] = TtlCache(60, clock=clock)
    cache.put("token", 1, not_after=clock.now + 5)
    clock.now += 5
    assert cache.get("token") is None
    cache.put("past", 2, not_after=clock.now - 1)
    assert cache.get("past") is None


def test_zero_ttl_disables_the_cache():
    cache: TtlCache[str, int] = TtlCache(0)
    cache.put("a", 1)
    assert cache.get("a") is None


def test_full_cache_drops_expired_then_oldest_entries():
    clock = Clock()
    cache: TtlCache[int, int] = TtlCache(10, clock=clock, max_entries=3)
    cache.put(1, 1)
    clock.now += 20
    cache.put(2, 2)
    cache.put(3, 3)
    cache.put(4, 4)  # 1 has expired: it goes, the others stay
    assert [cache.get(k) for k in (2, 3, 4)] == [2, 3, 4]
    cache.put(5, 5)  # nothing expired: the oldest (2) goes
    assert cache.get(2) is None
    assert [cache.get(k) for k in (3, 4, 5)] == [3, 4, 5]


def test_forget_and_clear():
    cache: TtlCache[str, int] = TtlCache(10)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.forget("a")
    assert cache.get("a") is None and cache.get("b") == 2
    cache.clear()
    assert len(cache) == 0


def test_invalid_settings_are_refused_early():
    with pytest.raises(ValueError, match="ttl_seconds"):
        TtlCache(-1)
    with pytest.raises(ValueError, match="max_entries"):
        TtlCache(1, max_entries=0)


def test_concurrent_use_stays_bounded():
    cache: TtlCache[int, int] = TtlCache(10, max_entries=100)

    def writer(base: int) -> None:
        for i in range(2000):
            cache.put(base + i, i)
            cache.get(base + i // 2)

    threads = [threading.Thread(target=writer, args=(n * 10_000,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(cache) <= 100
