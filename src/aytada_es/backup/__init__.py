"""Backups an operator can trust: take one while the service runs, verify it, restore it.

`aytada-es backup FILE` writes one tar file (0600, atomically) holding a consistent snapshot of
the event store, the assets its events name, the chain anchors up to the snapshot's position and
the keys the data needs, sealed with a passphrase; `manifest.json` lists every member with its
sha256. `backup verify FILE` checks every byte of it without a store or a service;
`restore FILE` refuses a non-empty target, restores aside, proves the copy whole (chains against
anchors, credit reconciliations, assets), rebuilds the read models and only then moves it into
place. docs/operations.md has the procedures.
"""
