"""The source role's publication pipeline: report intake, manifest reconciliation, DMP publication."""
