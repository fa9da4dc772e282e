"""The asset store: each content once, on disk before any event can name it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aytada_es.adapters.assets import AssetStore
from aytada_es.domain.errors import AssetNotFound


def test_a_new_file_and_its_rename_are_synced_before_put_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    store = AssetStore(tmp_path)
    record = store.put(b"frame", kind="clip", content_type="video/mp4")
    folder = str(tmp_path / record["id"][:2])
    assert len(synced) == 2
    assert synced[0].startswith(os.path.join(folder, "." + record["id"]))  # the file, aside
    assert synced[1] == folder  # the folder, after the rename
    assert store.read(record["id"]) == b"frame"
    assert sorted(os.listdir(folder)) == [record["id"]]  # nothing left aside

    synced.clear()
    again = store.put(b"frame", kind="clip", content_type="video/mp4")
    assert again["id"] == record["id"] and synced == []  # stored once


def test_unknown_kinds_and_ids_are_refused(tmp_path: Path) -> None:
    store = AssetStore(tmp_path)
    with pytest.raises(ValueError, match="unknown asset kind"):
        store.put(b"x", kind="gif", content_type="image/gif")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(AssetNotFound):
        store.read("../../etc/passwd")
