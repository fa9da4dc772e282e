"""SQLite writers of several processes take turns through a file lock beside the database."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from aytada_es.adapters.sqlite import LOCK_SUFFIX, WriterLock
from aytada_es.application import Studio
from aytada_es.config import Settings


def test_a_second_holder_waits_until_the_first_releases(tmp_path: Path) -> None:
    path = str(tmp_path / "db.writer-lock")
    first, second = WriterLock(path), WriterLock(path)  # two descriptors, as two processes have
    first.acquire()
    acquired = threading.Event()

    def take() -> None:
        second.acquire()
        acquired.set()
        second.release()

    thread = threading.Thread(target=take)
    thread.start()
    assert not acquired.wait(0.2)
    released_at = time.monotonic()
    first.release()
    assert acquired.wait(5)
    assert time.monotonic() - released_at < 0.1  # handed over at once, no busy-wait sleeps
    thread.join()
    first.close()
    second.close()


def test_the_event_store_holds_the_lock_only_while_it_writes(tmp_path: Path) -> None:
    settings = Settings.from_env({"AYTADA_DATA_DIR": str(tmp_path)})
    studio = Studio(settings.database().eventsourcing_env())
    try:
        lock = WriterLock(settings.database().path + LOCK_SUFFIX)
        lock.acquire()  # another process writing: the save waits for it
        saved = threading.Event()
        thread = threading.Thread(
            target=lambda: (studio.open_account("ann", credits=5), saved.set())
        )
        thread.start()
        assert not saved.wait(0.3)
        assert studio.recorder.max_notification_id() in (None, 0)
        lock.release()
        assert saved.wait(5)
        thread.join()
        lock.acquire()  # free again once the save committed; reads never take it
        assert studio.account_named("ann").balance == 5
        lock.release()
        lock.close()
    finally:
        studio.close()
