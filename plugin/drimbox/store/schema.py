"""Schema migrations, applied in order. Never edit a released step; append a new one."""

from drimbox.store.consumer_schema import CONSUMER_TABLES

MIGRATIONS: list[list[str]] = [
    [
        # Every inbound HL7/REST message, usable or not: nothing a RIS sends is lost.
        """CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            received_at REAL NOT NULL,
            channel TEXT NOT NULL,
            message_type TEXT NOT NULL DEFAULT '',
            control_id TEXT NOT NULL DEFAULT '',
            event TEXT,
            report_id TEXT,
            raw BLOB NOT NULL,
            ack_code TEXT NOT NULL DEFAULT '',
            ack_text TEXT NOT NULL DEFAULT '',
            errors TEXT NOT NULL DEFAULT '[]'
        )""",
        "CREATE INDEX messages_report ON messages (report_id)",
        # One row per report version the box accepted.
        """CREATE TABLE reports (
            report_id TEXT PRIMARY KEY,
            message_id INTEGER REFERENCES messages(id),
            received_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            state TEXT NOT NULL,
            problem TEXT NOT NULL DEFAULT '',
            replaces_report_id TEXT,
            replaced_by_report_id TEXT,
            study_uids TEXT NOT NULL DEFAULT '[]',
            flags TEXT NOT NULL DEFAULT '{}',
            cda BLOB,
            viewer_partial_url TEXT
        )""",
        # One row per study the pipeline knows about (from the PACS, from a report, or both).
        """CREATE TABLE studies (
            study_uid TEXT PRIMARY KEY,
            orthanc_id TEXT,
            report_id TEXT,
            state TEXT NOT NULL,
            problem TEXT NOT NULL DEFAULT '',
            stable_at REAL,
            pending INTEGER NOT NULL DEFAULT 0,
            updated_at REAL NOT NULL
        )""",
        "CREATE INDEX studies_pending ON studies (pending)",
        """CREATE TABLE manifests (
            kos_uid TEXT PRIMARY KEY,
            study_uid TEXT NOT NULL,
            report_id TEXT NOT NULL,
            version INTEGER NOT NULL,
            created_at REAL NOT NULL,
            status TEXT NOT NULL,
            replaces_kos_uid TEXT,
            fingerprint TEXT NOT NULL,
            series_count INTEGER NOT NULL,
            instance_count INTEGER NOT NULL,
            content TEXT NOT NULL,
            data BLOB NOT NULL,
            dmp_entry_uuid TEXT,
            dmp_status TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX manifests_study ON manifests (study_uid, version)",
        """CREATE TABLE publications (
            id INTEGER PRIMARY KEY,
            study_uid TEXT NOT NULL,
            kos_uid TEXT NOT NULL,
            action TEXT NOT NULL,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            last_error TEXT NOT NULL DEFAULT '',
            dmp_entry_uuid TEXT,
            replaces_entry_uuid TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            ready_at REAL NOT NULL,
            done_at REAL,
            claimed_by TEXT,
            claimed_until REAL
        )""",
        "CREATE INDEX publications_due ON publications (state, next_attempt_at)",
        "CREATE INDEX publications_study ON publications (study_uid, id)",
        """CREATE TABLE audit (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            entry_point TEXT NOT NULL,
            action TEXT NOT NULL,
            outcome_status INTEGER NOT NULL,
            professional_id TEXT,
            study_uid TEXT,
            kos_uid TEXT,
            event TEXT NOT NULL
        )""",
        "CREATE INDEX audit_at ON audit (at)",
        "CREATE INDEX audit_study ON audit (study_uid)",
        "CREATE TABLE facts (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at REAL NOT NULL)",
        # What Orthanc does not index in 1.10 but a manifest needs: the SOP class of each instance and, for
        # key objects, their kind (and the instances a rejection note rejects).
        """CREATE TABLE instances (
            orthanc_id TEXT PRIMARY KEY,
            sop_class_uid TEXT NOT NULL,
            kind TEXT NOT NULL DEFAULT '',
            rejects TEXT NOT NULL DEFAULT '[]'
        )""",
    ],
    [
        # the study of each instance, learnt as it is stored: a study that receives images is looked at again
        "ALTER TABLE instances ADD COLUMN study_uid TEXT",
        "CREATE INDEX instances_study ON instances (study_uid)",
    ],
    [
        # enough of each instance to build a manifest without listing the study through Orthanc's REST API
        "ALTER TABLE instances ADD COLUMN series_uid TEXT",
        "ALTER TABLE instances ADD COLUMN sop_instance_uid TEXT",
        "ALTER TABLE instances ADD COLUMN instance_number INTEGER",
    ],
    [
        # Operator sessions of the admin entry: the cookie holds a random token, only its SHA-256 is kept.
        """CREATE TABLE operator_sessions (
            token_hash TEXT PRIMARY KEY,
            user TEXT NOT NULL,
            created_at REAL NOT NULL,
            last_seen REAL NOT NULL,
            expires_at REAL NOT NULL
        )""",
        # Failed operator logins per key (``ip:<address>`` or ``user:<name>``), durable across restarts.
        """CREATE TABLE login_failures (
            key TEXT PRIMARY KEY,
            failures INTEGER NOT NULL,
            last_failure REAL NOT NULL,
            locked_until REAL NOT NULL DEFAULT 0
        )""",
    ],
    [
        # accepted with warnings (AA + ERR severity W): shown to the operator next to the refusals
        "ALTER TABLE messages ADD COLUMN warnings TEXT NOT NULL DEFAULT '[]'",
    ],
    CONSUMER_TABLES,
]
