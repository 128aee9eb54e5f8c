"""Settings of the operator (admin) entry: who may log in, how long a session lasts, failed-login limits."""

from __future__ import annotations

from dataclasses import dataclass

from drimbox.util.setting import setting


@dataclass(frozen=True)
class OperatorSettings:
    users_file: str = setting("", "file of name:scrypt$... lines (drimbox operator passwd writes one); empty: "
                                  "nobody can log in")
    session_idle_minutes: float = setting(30.0, "a session unused this long ends")
    session_max_hours: float = setting(12.0, "no session lives longer than this")
    login_max_failures: int = setting(5, "failed logins (per address and per user name) before each further "
                                         "attempt is locked out")
    login_lock_seconds: float = setting(30.0, "first lock-out, doubled at every further failure")
    login_lock_max_seconds: float = setting(900.0, "longest lock-out")
    login_failure_window_minutes: float = setting(60.0, "failures older than this are forgotten")

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
