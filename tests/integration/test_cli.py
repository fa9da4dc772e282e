"""The `aytada-es` command line, run as a real process."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from aytada_es import cli as aytada_es
from aytada_es.application import Studio, hash_token
from aytada_es.config import Settings
from aytada_es.domain.account import account_id
from aytada_es.projections import read_models

pytestmark = pytest.mark.kafka


def cli(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aytada_es", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "AYTADA_DATA_DIR": str(tmp_path / "var"),
        "AYTADA_PROVIDERS": "instant",
        "AYTADA_LOG_LEVEL": "WARNING",
    }


def studio_of(env: dict[str, str]) -> Studio:
    return Studio(Settings.from_env(env).database().eventsourcing_env())


def test_users_add_prints_the_token_alone_on_the_last_line_and_stores_only_its_hash(
    env: dict[str, str],
) -> None:
    done = cli("users", "add", "alice", "--credits", "250", env=env)
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip().splitlines()[-1]
    assert token.startswith("ayt_") and " " not in token
    studio = studio_of(env)
    try:
        account = studio.account_named("alice")
        assert account.balance == 250 and account.role == "user"
        assert account.token_hash == hash_token(token)
        stored = b"".join(n.state for n in studio.recorder.select_notifications(1, 100))
        assert token.encode() not in stored
    finally:
        studio.close()
    again = cli("users", "add", "alice", env=env)
    assert again.returncode == 2
    assert "already exists" in again.stderr


def test_bad_input_to_the_cli_is_a_clear_error_and_changes_nothing(env: dict[str, str]) -> None:
    bad_role = cli("users", "add", "bob", "--role", "admin", env=env)
    assert bad_role.returncode == 2 and "invalid choice" in bad_role.stderr
    negative = cli("users", "add", "bob", "--credits", "-5", env=env)
    assert negative.returncode == 2 and "credits" in negative.stderr
    # Beyond a signed 64-bit integer: it would stop the read models of every user.
    huge = cli("users", "add", "huge", "--credits", "99999999999999999999999", env=env)
    assert huge.returncode == 2 and "64-bit" in huge.stderr
    bad_name = cli("users", "add", "bob\u202eevil", env=env)
    assert bad_name.returncode == 2 and "name" in bad_name.stderr
    bad_config = cli("users", "add", "bob", env={**env, "AYTADA_DATABASE_URL": "mysql://x"})
    assert bad_config.returncode == 2 and "AYTADA_DATABASE_URL" in bad_config.stderr
    studio = studio_of(env)
    try:
        assert not studio.recorder.select_notifications(1, 10)
    finally:
        studio.close()


def test_a_token_command_with_no_service_running_says_so_and_leaves_the_read_models_alone(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    studio = Studio(settings.database().eventsourcing_env())
    try:
        _, old = studio.open_account("alice")
        models = read_models(studio)
        while models.catch_up():
            pass
        monkeypatch.setattr(aytada_es, "READ_MODEL_WAIT_S", 0.2)
        monkeypatch.setenv("AYTADA_DATA_DIR", str(settings.data_dir))
        monkeypatch.setenv("AYTADA_DATABASE_URL", settings.database_url)
        monkeypatch.setenv("AYTADA_PROVIDERS", "instant")
        assert aytada_es.main(["users", "rotate-token", "alice"]) == 0
        out, err = capsys.readouterr()
        assert "no projections applied the change" in err and "next run" in err
        new = out.splitlines()[-1]
        assert studio.account_named("alice").token_hash == hash_token(new)
        # The command waited for the service; it did not apply the change itself.
        row = models.accounts.account(account_id("alice"))
        assert row is not None and row["token_hash"] == hash_token(old)
        models.catch_up()
        row = models.accounts.account(account_id("alice"))
        assert row is not None and row["token_hash"] == hash_token(new)
    finally:
        studio.close()


def test_projections_rebuild_gives_the_same_rows(env: dict[str, str]) -> None:
    studio = studio_of(env)
    try:
        owner = studio.open_account("alice", credits=100)[0].id
        for i in range(3):
            p = studio.create_project(
                owner, title=f"Ad {i}", format="1:1", brief="b", actor="user:alice"
            )
            studio.request_ideas(owner, p.id, actor="user:alice")
        studio.delete_project(owner, p.id, actor="user:alice")
        models = read_models(studio)
        while models.catch_up():
            pass
        before = (models.videos.videos_of(owner), models.deleted.deleted_projects())
    finally:
        studio.close()
    done = cli("projections", "rebuild", env=env)
    assert done.returncode == 0, done.stderr
    assert "rebuilt every read model" in done.stdout
    assert "#" in done.stderr  # the progress bar
    studio = studio_of(env)
    try:
        models = read_models(studio)
        assert (models.videos.videos_of(owner), models.deleted.deleted_projects()) == before
    finally:
        studio.close()


def test_serve_runs_the_pipeline_with_its_own_broker_and_stops_cleanly_on_ctrl_c(
    env: dict[str, str],
) -> None:
    studio = studio_of(env)
    owner = studio.open_account("alice", credits=1000)[0].id
    output = Path(env["AYTADA_DATA_DIR"]).parent / "serve.log"
    with output.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "aytada_es", "serve", "--port", "0"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        project = studio.create_project(
            owner, title="Fizz", format="9:16", brief="b", autopilot=True, actor="user:alice"
        )
        deadline = time.monotonic() + 60
        while studio.project(project.id).status != "completed":
            assert server.poll() is None, output.read_text()
            assert time.monotonic() < deadline, "the served pipeline did not complete"
            time.sleep(0.1)
        # Other commands find serve's bundled broker through the address it announced.
        announced = Path(env["AYTADA_DATA_DIR"]) / "broker.address"
        assert oct(announced.stat().st_mode & 0o777) == "0o600"
        listed = cli("stages", "--json", env=env)
        assert listed.returncode == 0, listed.stderr
        report = json.loads(listed.stdout)
        assert report["broker"] == announced.read_text().strip()
        assert all(isinstance(s["lag"], int) for s in report["stages"])
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=30) == 0
    finally:
        if server.poll() is None:
            server.kill()
        studio.close()
    log = Path(env["AYTADA_DATA_DIR"]) / "broker.log"
    assert log.exists() and not announced.exists()


def test_a_relay_worker_answers_healthz_and_metrics_on_its_port(
    env: dict[str, str], broker: str
) -> None:
    env = {
        **env,
        "AYTADA_KAFKA_BOOTSTRAP": broker,
        "AYTADA_KAFKA_NAMESPACE": f"t{uuid.uuid4().hex[:10]}.",
    }
    studio = studio_of(env)
    output = Path(env["AYTADA_DATA_DIR"]).parent / "worker.log"
    with output.open("w") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "aytada_es", "worker", "relay", "--port", "0"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        url = _printed_url(worker, output)
        health = httpx.get(f"{url}/healthz", timeout=10)
        assert health.status_code == 200, health.text
        assert health.json()["parts"] == {
            "anchors": True,
            "broker": True,
            "relay": True,
            "store": True,
        }
        studio.open_account("alice", credits=100)  # events for the worker's relay to publish
        stored = studio.recorder.max_notification_id()
        assert stored
        deadline = time.monotonic() + 30
        while (metrics := _metrics(url))["aytada_relay_published_total"] != stored:
            assert time.monotonic() < deadline, f"the relay did not publish: {metrics}"
            time.sleep(0.1)
        assert metrics["aytada_relay_lag_events"] == 0
        assert metrics["aytada_store_position"] == stored
        assert metrics["aytada_events_stored_total"] == 0  # the test stored them, not the worker
        worker.send_signal(signal.SIGINT)
        assert worker.wait(timeout=30) == 0, output.read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        studio.close()


def _printed_url(worker: subprocess.Popen[bytes], output: Path) -> str:
    """The address a worker says it serves its health and metrics on."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = re.search(r"health and metrics on (http://\S+)", output.read_text())
        if found:
            return found.group(1)
        assert worker.poll() is None, output.read_text()
        time.sleep(0.05)
    raise AssertionError(f"the worker printed no address: {output.read_text()}")


def _metrics(url: str) -> dict[str, float]:
    """The unlabelled samples of a scrape of `/metrics`, by name."""
    answer = httpx.get(f"{url}/metrics", timeout=10)
    assert answer.status_code == 200, answer.text
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
        if not sample.labels
    }
