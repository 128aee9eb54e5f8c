"""Settings of the operator (admin) entry: who may log in, how long a session lasts, failed-login limits."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OperatorSettings:
    # File of ``name:scrypt$...`` lines (``drimbox operator hash-password`` writes one). Empty: nobody can log in.
    users_file: str = ""
    session_idle_minutes: float = 30.0  # a session unused this long ends
    session_max_hours: float = 12.0  # and none lives longer than this
    # After this many failed logins (per source address and per user name) each attempt is refused for
    # ``LoginLockSeconds``, doubled at every further failure up to ``LoginLockMaxSeconds``.
    login_max_failures: int = 5
    login_lock_seconds: float = 30.0
    login_lock_max_seconds: float = 900.0
    login_failure_window_minutes: float = 60.0  # failures older than this are forgotten

    def validate(self, path: str) -> None:
        from drimbox.config.fields import SettingsError  # drimbox.config imports this module

        for key, value in (("SessionIdleMinutes", self.session_idle_minutes),
                           ("SessionMaxHours", self.session_max_hours),
                           ("LoginLockSeconds", self.login_lock_seconds),
                           ("LoginFailureWindowMinutes", self.login_failure_window_minutes)):
            if value <= 0:
                raise SettingsError(f"{path}.{key} must be > 0, got {value}")
        if self.login_max_failures < 1:
            raise SettingsError(f"{path}.LoginMaxFailures must be >= 1, got {self.login_max_failures}")
        if self.login_lock_max_seconds < self.login_lock_seconds:
            raise SettingsError(f"{path}.LoginLockMaxSeconds must be >= LoginLockSeconds")
