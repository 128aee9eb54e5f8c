"""Tables of the consumer role (one migration step of drimbox.store.schema)."""

CONSUMER_TABLES: list[str] = [
    # One row per appel contextuel that opened a context; binding = SHA-256 of the browser's binding cookie.
    """CREATE TABLE consumer_contexts (
        context_id TEXT PRIMARY KEY,
        binding_digest TEXT NOT NULL,
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        appel TEXT NOT NULL,
        professional_id TEXT NOT NULL DEFAULT '',
        activity_key TEXT NOT NULL DEFAULT '',
        structure_id TEXT NOT NULL DEFAULT '',
        reason TEXT NOT NULL DEFAULT '',
        reason_text TEXT NOT NULL DEFAULT '',
        history TEXT,
        history_at REAL,
        updated_at REAL NOT NULL
    )""",
    "CREATE INDEX consumer_contexts_expiry ON consumer_contexts (expires_at)",
    # The national statistics: one line per appel contextuel, success or error.
    """CREATE TABLE consumer_statistics (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        outcome TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT ''
    )""",
    "CREATE INDEX consumer_statistics_at ON consumer_statistics (at)",
    # Opening an exam: one retrieval per (context, KOS), its progress and outcome.
    """CREATE TABLE consumer_retrievals (
        context_id TEXT NOT NULL,
        kos_uid TEXT NOT NULL,
        study_uid TEXT NOT NULL DEFAULT '',
        state TEXT NOT NULL,
        series_total INTEGER NOT NULL DEFAULT 0,
        series_done INTEGER NOT NULL DEFAULT 0,
        refused_hosts TEXT NOT NULL DEFAULT '[]',
        error TEXT NOT NULL DEFAULT '',
        started_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (context_id, kos_uid)
    )""",
    # Foreign studies in the local Orthanc: state cached (until expires_at), imported (permanent), purging, purged.
    # Never published.
    """CREATE TABLE consumer_cache (
        study_uid TEXT PRIMARY KEY,
        kos_uid TEXT NOT NULL,
        patient_ins TEXT NOT NULL,
        source_host TEXT NOT NULL,
        state TEXT NOT NULL,
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        -- "Import into my PACS": '' | importing | imported | failed, what went wrong, when it was done
        import_state TEXT NOT NULL DEFAULT '',
        import_detail TEXT NOT NULL DEFAULT '',
        imported_at REAL
    )""",
    "CREATE INDEX consumer_cache_expiry ON consumer_cache (state, expires_at)",
]
