"""A real Mosquitto run from meterhub's own generated files, for integration tests.

The CA and server certificate are made with the openssl CLI; mosquitto.conf and the
dynamic-security state are written by meterhub's functions from the meters in the given database,
plus fresh service accounts (ingest, control, admin; the simulator only when asked for). Every
wait is bounded; the broker is stopped when the context ends.

The API, for fault tests that stop, kill and restart the broker::

    with running_broker(tmp_path, engine, persistence_dir=tmp_path / "keep") as broker:
        broker.tls_port, broker.plain_port, broker.ca      # listeners, stable across restarts
        broker.services["meterhub-ingest"]                 # plaintext service passwords
        broker.save()        # SIGUSR1: persist now; returns once mosquitto.db was replaced
        broker.stop()        # SIGTERM (Mosquitto saves its persistence), wait for the exit
        broker.kill()        # SIGKILL: no save; what came after the last save is gone
        broker.start()       # the same conf, ports, state and persistence directory
        broker.restart()     # stop() then start()
        broker.add_meters("M-1", "M-2")  # register + push to the running broker + rewrite state
        broker.sync()        # rewrite the state file from the database (read at the next start)
        broker.control(cmds) # $CONTROL/dynamic-security commands as meterhub-admin
"""

from __future__ import annotations

import getpass
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import Engine

from conftest import service_missing
from meterhub.devices import broker_state, control, credentials, dynsec, mosquitto, registry

MOSQUITTO = Path("/usr/sbin/mosquitto")
OPENSSL = shutil.which("openssl")
WAIT_S = 5.0
# A broker with a large persistence file, or a loaded CI machine, takes longer to stop or load.
STOP_WAIT_S = 30.0
START_WAIT_S = 30.0


def require_tools() -> None:
    """Fail in CI, skip elsewhere, when mosquitto, its plugin or openssl is missing."""
    missing = [str(p) for p in (MOSQUITTO,) if not p.exists()]
    if not broker_state.find_dynsec_plugin().exists():
        missing.append("mosquitto_dynamic_security.so")
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


def _wait_for_port(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_WAIT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"mosquitto exited with {process.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"mosquitto did not listen on {port} within {START_WAIT_S} s:\n{log.read_text()}")


@dataclass
class Broker:
    engine: Engine
    ca: Path
    tls_port: int
    plain_port: int
    conf: Path
    state: Path  # the dynamic-security state file (plugin_opt_config_file)
    data_dir: Path  # persistence_location
    log: Path
    services: dict[str, str]  # username -> plaintext secret
    topics: dynsec.Topics
    process: subprocess.Popen[bytes] | None = None

    @property
    def persistence_file(self) -> Path:
        return self.data_dir / "mosquitto.db"

    @property
    def pid(self) -> int:
        assert self.process is not None, "the broker is not running"
        return self.process.pid

    @property
    def control_url(self) -> str:
        secret = quote(self.services[mosquitto.ADMIN_ACCOUNT], safe="")
        return f"mqtt://{mosquitto.ADMIN_ACCOUNT}:{secret}@127.0.0.1:{self.plain_port}"

    def start(self) -> None:
        """Start Mosquitto from the same files; return once both listeners accept."""
        assert self.process is None or self.process.poll() is not None, "already running"
        with self.log.open("ab") as log_handle:
            self.process = subprocess.Popen(
                [str(MOSQUITTO), "-c", str(self.conf)], stdout=log_handle, stderr=subprocess.STDOUT
            )
        _wait_for_port(self.process, self.tls_port, self.log)
        _wait_for_port(self.process, self.plain_port, self.log)

    def stop(self) -> None:
        """SIGTERM: Mosquitto saves its persistence and exits; wait for that."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=WAIT_S)
            pytest.fail(f"mosquitto did not stop within {STOP_WAIT_S} s on SIGTERM")

    def kill(self) -> None:
        """SIGKILL: no save; everything since the last save is lost, as in a crash."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=WAIT_S)

    def restart(self) -> None:
        self.stop()
        self.start()

    def save(self) -> None:
        """SIGUSR1: Mosquitto writes its persistence now; return once the new file is in place."""
        before = self.persistence_file.stat() if self.persistence_file.exists() else None
        assert self.process is not None
        self.process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + STOP_WAIT_S
        while time.monotonic() < deadline:
            if self.persistence_file.exists():
                now = self.persistence_file.stat()
                if before is None or (now.st_ino, now.st_mtime_ns) != (
                    before.st_ino,
                    before.st_mtime_ns,
                ):
                    return
            time.sleep(0.01)
        pytest.fail(f"mosquitto did not save {self.persistence_file} within {STOP_WAIT_S} s")

    def sync(self) -> broker_state.StateWrite:
        """Rewrite the state file from the database; the broker reads it at its next start."""
        return broker_state.write_state(self.engine, self.state, self.topics)

    def control(self, commands: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        return control.send_commands(self.control_url, commands, timeout=START_WAIT_S)

    def add_meters(self, *meter_ids: str) -> dict[str, str]:
        """Register meters the way `meterhub meter add` does: database, live push, state file."""
        secrets = {meter_id: registry.add_meter(self.engine, meter_id) for meter_id in meter_ids}
        for meter_id, secret in secrets.items():
            self.control(dynsec.add_meter_commands(meter_id, secret, self.topics))
        self.sync()
        return secrets


@contextmanager
def running_broker(
    tmp_path: Path,
    engine: Engine,
    *,
    topic_prefix: str = "meters",
    share_group: str = "meterhub-ingest",
    with_sim: bool = False,
    persistence_dir: Path | None = None,
    autosave_seconds: int = mosquitto.DEFAULT_AUTOSAVE_SECONDS,
) -> Iterator[Broker]:
    """Mosquitto with a TLS listener (test CA) and a plain loopback one, from meterhub's files.

    ``engine`` must hold a migrated schema; the meters registered in it get broker access.
    ``persistence_dir`` (default: beside the conf) keeps Mosquitto's persistence, so that a test
    can inspect it or start a second broker on it.
    """
    require_tools()
    ca, cert, key = make_pki(tmp_path / "pki")
    accounts = mosquitto.PRODUCTION_ACCOUNTS + ((mosquitto.SIM_ACCOUNT,) if with_sim else ())
    services = {name: credentials.generate_secret() for name in accounts}
    conf_dir = tmp_path / "broker"
    data_dir = persistence_dir or conf_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    topics = dynsec.Topics(prefix=topic_prefix, share_group=share_group)
    state = conf_dir / "dynamic-security.json"
    broker_state.write_state(
        engine,
        state,
        topics,
        services={name: credentials.hash_secret(secret) for name, secret in services.items()},
    )
    tls_port, plain_port = free_port(), free_port()
    conf = conf_dir / "mosquitto.conf"
    conf.write_text(
        mosquitto.mosquitto_conf_text(
            dynsec_plugin=broker_state.find_dynsec_plugin(),
            dynsec_state=state,
            persistence_location=data_dir,
            tls=mosquitto.TlsListener(
                cafile=ca, certfile=cert, keyfile=key, port=tls_port, bind_address="127.0.0.1"
            ),
            plain_port=plain_port,
            autosave_seconds=autosave_seconds,
            # Started as root, Mosquitto would switch to the 'mosquitto' user, which cannot read
            # files in pytest's private tmp_path.
            run_as_user=getpass.getuser(),
        )
    )
    broker = Broker(
        engine=engine,
        ca=ca,
        tls_port=tls_port,
        plain_port=plain_port,
        conf=conf,
        state=state,
        data_dir=data_dir,
        log=tmp_path / "mosquitto.log",
        services=services,
        topics=topics,
    )
    try:
        broker.start()
        yield broker
    finally:
        if broker.process is not None and broker.process.poll() is None:
            broker.process.terminate()
            try:
                broker.process.wait(timeout=STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                broker.process.kill()
                broker.process.wait(timeout=WAIT_S)
