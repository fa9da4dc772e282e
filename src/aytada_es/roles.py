"""The roles a worker process can run besides the web app."""

ROLES = ("relay", "stages", "projections")
