"""Audits: a project's or an account's whole history replayed from the raw stored events.

Nothing here reads a read model or writes anything. Each report checks the aggregate's hash
chain (`adapters/chain.py`), replays its events, reconciles its credits and looks for what is
unfair though consistent (`findings.py`); `passed` says whether all of it holds. The reports are
the pydantic models of `reports.py`: the CLI prints them as text (`text.py`) or JSON, the web
edge answers the same JSON. Import the module you need; this package imports nothing.
"""
