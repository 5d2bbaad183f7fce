"""tests.aws.motoserver: run a real ``moto_server`` (EC2 over HTTP) in a subprocess for provider tests.

Shared by ``tests/aws/conftest.py`` and ``tests/conformance/backend_aws.py``. The server
listens on a free port of 127.0.0.1, is stopped by its own process id, and can be reset
between tests (``POST /moto-api/reset``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

REGION = "us-east-1"
# An AMI moto ships for us-east-1 (root device /dev/sda1); any ami- id moto knows works.
AMI = "ami-12c6146b"
# Dummy credentials: moto accepts anything, and nothing real is ever read.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def isolated_aws_env(home: Path) -> dict[str, str]:
    """Environment variables that make boto3 use only the dummy credentials (no real profile)."""
    return {
        **CREDENTIALS,
        "AWS_CONFIG_FILE": str(home / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@dataclass
class MotoServer:
    """A running ``moto_server`` process and its endpoint URL."""

    process: subprocess.Popen[bytes]
    url: str

    def reset(self) -> None:
        """Forget every resource (between tests)."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=10) as reply:
            reply.read()

    def client(self) -> Any:
        """A plain boto3 EC2 client on this server, for checking results behind the provider's back."""
        return boto3.client(
            "ec2",
            region_name=REGION,
            endpoint_url=self.url,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _command(port: int) -> list[str]:
    script = shutil.which("moto_server")
    if script is not None:
        return [script, "-H", "127.0.0.1", "-p", str(port)]
    return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]


def start_moto_server(home: Path, *, timeout: float = 30.0) -> MotoServer:
    """Start ``moto_server`` on a free port and wait until it answers."""
    port = free_port()
    env = {**os.environ, **isolated_aws_env(home)}
    home.mkdir(parents=True, exist_ok=True)
    log = (home / "moto_server.log").open("wb")
    process = subprocess.Popen(_command(port), env=env, stdout=log, stderr=subprocess.STDOUT)
    server = MotoServer(process=process, url=f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(
                f"moto_server exited with {process.returncode}; see {home / 'moto_server.log'}"
            )
        try:
            with urllib.request.urlopen(f"{server.url}/moto-api/", timeout=1) as reply:
                reply.read()
            return server
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(
                    f"moto_server did not answer on {server.url} within {timeout:g}s"
                ) from None
            time.sleep(0.1)


def throttle_hook(
    failures: int, *, code: str = "RequestLimitExceeded", status: int = 503
) -> Callable[..., Any]:
    """A botocore ``before-send`` handler answering the next ``failures`` requests with an EC2 error."""
    from botocore.awsrequest import AWSResponse

    remaining = [failures]
    body = (
        f"<Response><Errors><Error><Code>{code}</Code><Message>injected {code}</Message></Error></Errors>"
        "<RequestID>injected</RequestID></Response>"
    ).encode()

    class _Raw:
        def stream(self, **_: Any) -> Any:
            yield body

    def handler(request: Any, **_: Any) -> Any:
        if remaining[0] <= 0:
            return None
        remaining[0] -= 1
        return AWSResponse(request.url, status, {"Content-Type": "text/xml"}, _Raw())

    handler.remaining = remaining  # type: ignore[attr-defined]
    return handler
