"""aytada-es: the event-sourced back end of an AI ad-video studio's My Videos area."""

__version__ = "0.1.0"
