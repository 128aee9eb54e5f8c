"""Backups of a running box and restores into a stopped one."""
