"""The real `outreach serve` in a subprocess, for suites marked `server`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import REPO, free_port

OUTREACH = str(Path(sys.executable).with_name("outreach"))


@dataclass
class LiveServer:
    port: int
    process: subprocess.Popen[str]

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def raw(self, request: bytes, timeout: float = 10.0) -> bytes:
        """Send *request* bytes as they are and read the answer until the server closes."""
        with socket.create_connection(self.address, timeout=timeout) as sock:
            sock.sendall(request)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)


@contextmanager
def outreach_serve(site: Path, data_dir: Path, *args: str) -> Iterator[LiveServer]:
    """`outreach serve --no-build` of an already built *site*, until the block ends."""
    port = free_port()
    env = {**os.environ, "OUTREACH_DATA_DIR": str(data_dir)}
    command = [OUTREACH, "serve", "--no-build", "--out", str(site), "--port", str(port), *args]
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    server = LiveServer(port, process)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise AssertionError(f"outreach serve stopped:\n{process.communicate()[0]}")
            try:
                socket.create_connection(server.address, timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("outreach serve did not listen within 60 s") from None
                time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
