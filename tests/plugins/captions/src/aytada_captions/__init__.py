"""aytada-captions: a billed aytada-es stage that burns the script into the final video."""

__version__ = "1.0.0"
