"""The data directory is private to the service's user: made 0700, tightened once if loose."""

from __future__ import annotations

import stat
from pathlib import Path

from aytada_es.adapters.assets import AssetStore
from aytada_es.adapters.permissions import private_dir, private_file


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_data_dir_is_made_0700(tmp_path: Path) -> None:
    private_dir(tmp_path / "var" / "deeper")
    assert mode(tmp_path / "var" / "deeper") == 0o700


def test_a_loose_data_dir_is_tightened_once_with_its_files_and_assets(tmp_path: Path) -> None:
    data = tmp_path / "var"
    folder = data / "assets" / "ab"
    folder.mkdir(parents=True)
    other = data / "someone-elses"
    other.mkdir()
    files = [data / "aytada.sqlite", data / "broker.log", folder / ("ab" * 32)]
    for path in [*files, other / "notes.txt"]:
        path.write_text("x")
        path.chmod(0o644)
    for path in (data, data / "assets", folder, other):
        path.chmod(0o755)
    private_dir(data)
    assert mode(data) == 0o700
    assert mode(data / "assets") == 0o700 and mode(folder) == 0o700
    assert all(mode(path) == 0o600 for path in files)
    assert mode(other) == 0o755 and mode(other / "notes.txt") == 0o644, "not ours: left alone"
    files[0].chmod(0o644)
    private_dir(data)  # the directory is private now: nothing is walked again
    assert mode(files[0]) == 0o644


def test_assets_and_their_folders_are_owner_only(tmp_path: Path) -> None:
    store = AssetStore(tmp_path / "assets")
    asset = store.put(b"png", kind="banner", content_type="image/png")
    path = store.path(asset["id"])
    assert (mode(tmp_path / "assets"), mode(path.parent), mode(path)) == (0o700, 0o700, 0o600)


def test_a_private_file_is_made_0600_and_an_existing_one_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "aytada.sqlite"
    private_file(path)
    assert mode(path) == 0o600 and path.read_bytes() == b""
    path.write_bytes(b"data")
    private_file(path)
    assert path.read_bytes() == b"data"
