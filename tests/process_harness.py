"""A real subprocess for the tests that start servers and workers (tests/integration,
tests/reliability): its own session, output appended to a log file that failures quote, killed
with its whole process group when its test ends."""

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.2):
    """Polls `condition` until it returns something truthy, which is returned; fails naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)

class Process:
    """A subprocess in a session of its own, its output appended to a log file; `start` again
    after a kill runs the same command anew."""

    def __init__(self, name: str, args: list[str], env: dict, directory: Path):
        self.name, self.args, self.env, self.directory = name, args, env, directory
        self.log = directory / f"{name}.log"
        self.popen: subprocess.Popen | None = None
        self.start()

    def start(self) -> "Process":
        with open(self.log, "ab") as log:
            self.popen = subprocess.Popen(self.args, cwd=self.directory, env=self.env, stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def tail(self, characters: int = 4000) -> str:
        return f"--- {self.name} log ---\n{self.text()[-characters:]}"

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill_group(self) -> None:
        """SIGKILL to the process and every child it started: a machine or container gone."""
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.popen.wait(10)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        if self.alive():
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill_group()


def wait_until_healthy(process: "Process", url: str, timeout: float, interval: float = 0.2) -> None:
    """Waits until GET `url` answers 200, failing with the process's log if it exits first."""
    import httpx

    def healthy() -> bool:
        assert process.alive(), process.tail()
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(healthy, timeout, f"{process.name} to answer {url}", interval=interval)

