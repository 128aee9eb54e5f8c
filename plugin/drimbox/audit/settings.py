"""Settings of the audit trail: how long it stays in the store, where it goes after. Owned by the audit package."""

from __future__ import annotations

from dataclasses import dataclass

from drimbox.util.setting import SettingsError, setting

# The dashboard and the daily national indicators read the last days of the trail from the store.
MIN_RETENTION_DAYS = 7


@dataclass(frozen=True)
class AuditSettings:
    retention_days: int = setting(365, "days an audit row stays in the store before it is archived then deleted "
                                       f"from it; 0 = kept in the store forever; else at least {MIN_RETENTION_DAYS}")
    archive_dir: str = setting("", "folder of the archives (gzip JSON lines, one file per run); empty: "
                                   "`<DataDir>/audit-archive`")
    archive_interval_minutes: float = setting(60.0, "how often rows past RetentionDays are looked for")

    def validate(self, path: str) -> None:
        if self.retention_days != 0 and self.retention_days < MIN_RETENTION_DAYS:
            raise SettingsError(f"{path}.RetentionDays must be 0 (keep forever) or at least {MIN_RETENTION_DAYS} "
                                f"(the dashboard and the daily indicators read the last days), got "
                                f"{self.retention_days}")
        if self.archive_interval_minutes <= 0:
            raise SettingsError(f"{path}.ArchiveIntervalMinutes must be > 0, got {self.archive_interval_minutes}")

    def archive_folder(self, data_dir: str) -> str:
        """Where archives go ("" when neither ArchiveDir nor DataDir is set: then nothing is archived)."""
        if self.archive_dir:
            return self.archive_dir
        return f"{data_dir.rstrip('/')}/audit-archive" if data_dir else ""
