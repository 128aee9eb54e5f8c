import threading
import time

from drimbox.psc.introspection_cache import IntrospectionCache
from drimbox.psc.model import Introspection


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_active_answer_lives_for_the_ttl():
    clock = Clock()
    cache = IntrospectionCache(30, clock=clock)
    answer = Introspection(active=True, exp=clock.now + 300)
    cache.put("t", answer)
    clock.now += 29.9
    assert cache.get("t") is answer
    clock.now += 0.1
    assert cache.get("t") is None


def test_answer_never_outlives_the_token():
    clock = Clock()
    cache = IntrospectionCache(30, clock=clock)
    cache.put("t", Introspection(active=True, exp=clock.now + 5))
    clock.now += 5
    assert cache.get("t") is None


def test_inactive_answer_is_cached_up_to_the_token_expiry():
    clock = Clock()
    cache = IntrospectionCache(30, clock=clock)
    inactive = Introspection(active=False)
    cache.put("revoked", inactive, token_exp=clock.now + 10)
    cache.put("opaque", inactive)
    clock.now += 9
    assert cache.get("revoked") is inactive and cache.get("opaque") is inactive
    clock.now += 1
    assert cache.get("revoked") is None and cache.get("opaque") is inactive


def test_expired_token_and_zero_ttl_are_not_cached():
    clock = Clock()
    IntrospectionCache(30, clock=clock)
    cache = IntrospectionCache(30, clock=clock)
    cache.put("old", Introspection(active=False), token_exp=clock.now - 1)
    assert cache.get("old") is None and len(cache) == 0
    off = IntrospectionCache(0, clock=clock)
    off.put("t", Introspection(active=True))
    assert off.get("t") is None


def test_size_is_bounded_oldest_first():
    clock = Clock()
    cache = IntrospectionCache(30, clock=clock, max_entries=3)
    for i in range(5):
        cache.put(f"t{i}", Introspection(active=True))
    assert len(cache) == 3
    assert cache.get("t0") is None and cache.get("t4") is not None


def test_concurrent_use_and_hit_cost():
    cache = IntrospectionCache(30, clock=time.time, max_entries=500)
    errors = []

    def worker(n: int) -> None:
        try:
            for i in range(2000):
                token = f"t{(n * 7 + i) % 800}"
                cache.put(token, Introspection(active=True))
                cache.get(token)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(cache) <= 500

    cache.put("hot", Introspection(active=True))
    start = time.perf_counter()
    for _ in range(20_000):
        cache.get("hot")
    per_hit = (time.perf_counter() - start) / 20_000
    assert per_hit < 50e-6  # microseconds, far inside the 2 ms access-decision budget
