"""Stages that live outside the aytada_es package, as a developer's plug-in would."""
