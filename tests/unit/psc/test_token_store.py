from drimbox.psc.token_store import MemoryTokenStore, SessionTokens


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_tokens_are_kept_until_the_session_ends():
    clock = Clock()
    store = MemoryTokenStore(clock=clock)
    tokens = SessionTokens("at", "it", "rt", expires_at=1100)
    store.put("sid-1", tokens)
    assert store.get("sid-1") == tokens and store.get("sid-2") is None
    clock.now = 1100
    assert store.get("sid-1") is None


def test_delete_and_stale_cleanup():
    clock = Clock()
    store = MemoryTokenStore(clock=clock)
    store.put("a", SessionTokens("at", "it", "", expires_at=1010))
    store.put("b", SessionTokens("at", "it", "", expires_at=2000))
    store.delete("b")
    assert store.get("b") is None
    clock.now = 1020
    store.put("c", SessionTokens("at", "it", "", expires_at=3000))
    assert set(store._tokens) == {"c"}
