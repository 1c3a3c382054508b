"""Credentials: Mosquitto 2.x sha512-pbkdf2 hashes, generated and verified without a broker."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import service_missing
from meterhub.devices import credentials

MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"


def test_secret_is_32_url_safe_characters() -> None:
    secret = credentials.generate_secret()
    assert len(secret) == 32
    assert secret.replace("-", "").replace("_", "").isalnum()


def test_secrets_differ() -> None:
    assert credentials.generate_secret() != credentials.generate_secret()


def test_hash_has_mosquitto_layout() -> None:
    encoded = credentials.hash_secret("s3cret")
    empty, algorithm, iterations, salt, digest = encoded.split("$")
    assert (empty, algorithm, iterations) == ("", "7", str(credentials.DEFAULT_ITERATIONS))
    assert len(base64.b64decode(salt)) == 12
    assert len(base64.b64decode(digest)) == 64


def test_known_vector_matches_pbkdf2_sha512() -> None:
    # Independent of our code path: hashlib's PBKDF2-HMAC-SHA512 over the same inputs.
    salt = b"0123456789ab"
    expected = hashlib.pbkdf2_hmac("sha512", b"pw", salt, 101, 64)
    encoded = credentials.hash_secret("pw", iterations=101, salt=salt)
    salt_b64, digest_b64 = base64.b64encode(salt).decode(), base64.b64encode(expected).decode()
    assert encoded == f"$7$101${salt_b64}${digest_b64}"


def test_same_secret_hashes_differently_each_time() -> None:
    assert credentials.hash_secret("pw") != credentials.hash_secret("pw")


def test_verify_accepts_right_secret() -> None:
    assert credentials.verify("pw", credentials.hash_secret("pw"))


def test_verify_refuses_wrong_secret() -> None:
    assert not credentials.verify("pw2", credentials.hash_secret("pw"))


def test_verify_reads_iteration_count_from_hash() -> None:
    assert credentials.verify("pw", credentials.hash_secret("pw", iterations=7))


@pytest.mark.parametrize(
    "malformed",
    [
        "",
        "plaintext",
        "$6$salt$digest",  # Mosquitto 1.x sha512, not accepted
        "$7$abc$AAAAAAAAAAAAAAAA$" + "A" * 88,
        "$7$0$AAAAAAAAAAAAAAAA$" + "A" * 88,
        "$7$101$!!!$" + "A" * 88,
        "$7$101$AAAAAAAAAAAAAAAA$AAAA",  # digest too short
        "$7$99999999999$AAAAAAAAAAAAAAAA$" + "A" * 88,  # would spin for hours
    ],
)
def test_verify_refuses_malformed_hash(malformed: str) -> None:
    assert not credentials.verify("pw", malformed)


def test_parse_hash_names_the_problem() -> None:
    with pytest.raises(credentials.CredentialFormatError, match="iteration"):
        credentials.parse_hash("$7$0$AAAAAAAAAAAAAAAA$" + "A" * 88)


def test_hash_refuses_zero_iterations() -> None:
    with pytest.raises(ValueError, match="iterations"):
        credentials.hash_secret("pw", iterations=0)


def test_verify_accepts_line_written_by_mosquitto_passwd(tmp_path: Path) -> None:
    if not Path(MOSQUITTO_PASSWD).exists():
        service_missing(f"mosquitto_passwd at {MOSQUITTO_PASSWD}")
    # Runs the real tool (no broker, no network): our verify() reads its output.
    passwd = tmp_path / "passwd"
    subprocess.run(
        [MOSQUITTO_PASSWD, "-c", "-b", str(passwd), "meter-1", "s3cret"], check=True, timeout=10
    )
    username, _, encoded = passwd.read_text().strip().partition(":")
    assert username == "meter-1"
    assert credentials.verify("s3cret", encoded)
    assert not credentials.verify("s3cret!", encoded)
