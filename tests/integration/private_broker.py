"""A private Mosquitto for tests that stop, restart or reconfigure the broker.

Temporary config on a free port of 127.0.0.1 with ``persistence false`` (never the machine's
broker on 1883), killed by its pid. Either anonymous, or with a password file (``users``) and
optionally an ACL file (``acl``); Mosquitto reloads both on SIGHUP (``reload``).
"""

from __future__ import annotations

import getpass
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from conftest import service_missing

MOSQUITTO = Path("/usr/sbin/mosquitto")
MOSQUITTO_PASSWD = Path("/usr/bin/mosquitto_passwd")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def require_mosquitto() -> None:
    if not (MOSQUITTO.exists() and MOSQUITTO_PASSWD.exists()):
        service_missing(f"{MOSQUITTO} and {MOSQUITTO_PASSWD}")


class PrivateBroker:
    def __init__(self, directory: Path, *, anonymous: bool = False, acl: bool = False) -> None:
        self.directory = directory
        self.port = free_port()
        self.passwd = directory / "passwd"
        self.acl_file = directory / "acl"
        self.conf = directory / "mosquitto.conf"
        self.log = directory / "mosquitto.log"
        lines = [f"listener {self.port} 127.0.0.1", "persistence false"]
        if anonymous:
            lines.append("allow_anonymous true")
        else:
            lines += ["allow_anonymous false", f"password_file {self.passwd}"]
        if acl:
            lines.append(f"acl_file {self.acl_file}")
            self.acl("")
        # Run as whoever runs the tests: as root, Mosquitto would switch to a 'mosquitto' user
        # that cannot read pytest's private temporary directory.
        lines.append(f"user {getpass.getuser()}")
        self.conf.write_text("\n".join(lines) + "\n")
        self.process: subprocess.Popen[bytes] | None = None

    def users(self, *users: str) -> None:
        """Replace the password file (user name == password, it is a test)."""
        self.passwd.write_text("")
        for user in users:
            subprocess.run(
                [str(MOSQUITTO_PASSWD), "-b", str(self.passwd), user, user],
                check=True,
                capture_output=True,
                timeout=10,
            )
        self.passwd.chmod(0o600)

    def acl(self, text: str) -> None:
        """Replace the ACL file (takes effect at start or on ``reload``)."""
        self.acl_file.write_text(text)
        self.acl_file.chmod(0o600)

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(MOSQUITTO), "-c", str(self.conf)], stdout=log, stderr=log
            )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"mosquitto did not listen: {self.log.read_text()[-2000:]}")

    def reload(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGHUP)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self.process = None


@contextmanager
def private_broker(directory: Path, **options: bool) -> Iterator[PrivateBroker]:
    require_mosquitto()
    broker = PrivateBroker(directory, **options)
    try:
        yield broker
    finally:
        broker.kill()
