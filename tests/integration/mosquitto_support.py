"""A real Mosquitto run from meterhub's own generated files, for integration tests.

The CA and server certificate are made with the openssl CLI; the password file, ACL and
mosquitto.conf are written by meterhub's functions from the meters in the given database, plus
fresh service accounts. Every wait is bounded; the broker is killed when the context ends.
"""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine

from conftest import service_missing
from meterhub.devices import credentials, mosquitto, registry

MOSQUITTO = Path("/usr/sbin/mosquitto")
OPENSSL = shutil.which("openssl")
WAIT_S = 5.0


def require_tools() -> None:
    """Fail in CI, skip elsewhere, when the mosquitto binary or openssl is missing."""
    missing = [str(p) for p in (MOSQUITTO,) if not p.exists()]
    if OPENSSL is None:
        missing.append("openssl")
    if missing:
        service_missing(", ".join(missing))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _openssl(*args: str, cwd: Path) -> None:
    assert OPENSSL is not None
    subprocess.run([OPENSSL, *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def make_pki(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for localhost / 127.0.0.1 signed by it."""
    directory.mkdir()
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(
        "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
        "-subj", "/CN=meterhub test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip
    _openssl(
        "req", "-new", *ec, "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=localhost",
        cwd=directory,
    )  # fmt: skip
    (directory / "server.ext").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        "authorityKeyIdentifier=keyid\n"
        "subjectKeyIdentifier=hash\n"
    )
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "server.ext",
        cwd=directory,
    )  # fmt: skip
    return directory / "ca.crt", directory / "server.crt", directory / "server.key"


@dataclass
class Broker:
    engine: Engine
    ca: Path
    tls_port: int
    plain_port: int
    passwd: Path
    acl: Path
    process: subprocess.Popen[bytes]
    log: Path
    services: dict[str, str]  # username -> plaintext secret

    def sync(self) -> None:
        """Rewrite the password and ACL files from the database and SIGHUP the broker."""
        hashes = registry.read_service_accounts(self.passwd)
        registry.write_broker_files(
            self.engine, self.passwd, self.acl, hashes, mosquitto_pid=self.process.pid
        )


def _wait_for_port(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"mosquitto exited with {process.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"mosquitto did not listen on {port} within {WAIT_S} s:\n{log.read_text()}")


@contextmanager
def running_broker(
    tmp_path: Path, engine: Engine, *, topic_prefix: str = "meters"
) -> Iterator[Broker]:
    """Mosquitto with a TLS listener (test CA) and a plain loopback one, from meterhub's files.

    ``engine`` must hold a migrated schema; the meters registered in it get broker access.
    """
    require_tools()
    ca, cert, key = make_pki(tmp_path / "pki")
    services = {name: credentials.generate_secret() for name in mosquitto.SERVICE_ACCOUNTS}
    conf_dir = tmp_path / "broker"
    passwd, acl = conf_dir / "passwd", conf_dir / "acl"
    registry.write_broker_files(
        engine,
        passwd,
        acl,
        {name: credentials.hash_secret(secret) for name, secret in services.items()},
        topic_prefix=topic_prefix,
    )
    tls_port, plain_port = free_port(), free_port()
    conf = conf_dir / "mosquitto.conf"
    conf.write_text(
        mosquitto.mosquitto_conf_text(
            password_file=passwd,
            acl_file=acl,
            persistence_location=conf_dir / "data",
            tls=mosquitto.TlsListener(
                cafile=ca, certfile=cert, keyfile=key, port=tls_port, bind_address="127.0.0.1"
            ),
            plain_port=plain_port,
            # Started as root, Mosquitto would switch to the 'mosquitto' user, which cannot read
            # files in pytest's private tmp_path.
            run_as_user=getpass.getuser(),
        )
    )
    (conf_dir / "data").mkdir()
    log = tmp_path / "mosquitto.log"
    with log.open("wb") as log_handle:
        process = subprocess.Popen(
            [str(MOSQUITTO), "-c", str(conf)], stdout=log_handle, stderr=subprocess.STDOUT
        )
    try:
        _wait_for_port(process, tls_port, log)
        _wait_for_port(process, plain_port, log)
        yield Broker(engine, ca, tls_port, plain_port, passwd, acl, process, log, services)
    finally:
        process.terminate()
        try:
            process.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=WAIT_S)
