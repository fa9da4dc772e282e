"""The web edge: the HTTP API, the live push over WebSockets, sessions, and the pages."""

from .app import create_app
from .auth import Principal, authenticate
from .context import WebOptions

__all__ = ["Principal", "WebOptions", "authenticate", "create_app"]
