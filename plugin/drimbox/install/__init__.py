"""A production install: configuration, nginx and systemd units from a few answers."""
