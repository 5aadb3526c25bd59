"""Debian's Dovecot as a private IMAP server for the inbound tests: its own configuration,
users and mail folder under a temporary directory, on a free port of 127.0.0.1, stopped
when the test ends. scripts/test installs the package (dovecot-imapd)."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
USER, PASSWORD = "bounces", "imap-test-only"


@dataclass(frozen=True)
class ImapServer:
    host: str
    port: int
    user: str
    password: str
    ssl: bool


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _accounts() -> tuple[str, str, str]:
    """Dovecot's login and internal users, and the mail owner: as root, Debian's own
    unprivileged users; otherwise everything runs as the current user."""
    if os.geteuid() == 0:
        return "dovenull", "dovecot", "nobody"
    me = pwd.getpwuid(os.geteuid()).pw_name
    return me, me, me


@contextlib.contextmanager
def dovecot(tls: tuple[Path, Path] | None = None, implicit: bool = True) -> Iterator[ImapServer]:
    """A running Dovecot with one user (USER, PASSWORD); with `tls` (cert, key) it serves
    implicit TLS (imaps), or with `implicit=False` IMAP that requires STARTTLS. Its folder
    is one of its own that Dovecot's unprivileged processes can enter (pytest's are private
    to the test's user)."""
    directory = Path(tempfile.mkdtemp(prefix="bulletin-dovecot-"))
    directory.chmod(0o755)
    try:
        with _running(directory, tls, implicit) as server:
            yield server
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def _running(
    directory: Path, tls: tuple[Path, Path] | None, implicit: bool
) -> Iterator[ImapServer]:
    if not Path(DOVECOT).exists():
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail("dovecot is not installed; scripts/test installs dovecot-imapd")
        pytest.skip("dovecot is not installed (apt-get install dovecot-imapd)")
    login_user, internal_user, owner = _accounts()
    mail_owner = pwd.getpwnam(owner)
    home = directory / "home"
    for folder in ("run", "state", "home"):
        (directory / folder).mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(home, mail_owner.pw_uid, mail_owner.pw_gid)
    (directory / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
    port = free_port()
    listener = "imaps" if tls and implicit else "imap"
    ssl_settings = (
        f"ssl = required\nssl_cert = <{tls[0]}\nssl_key = <{tls[1]}\n" if tls else "ssl = no\n"
    )
    (directory / "dovecot.conf").write_text(
        f"base_dir = {directory / 'run'}\n"
        f"state_dir = {directory / 'state'}\n"
        f"log_path = {directory / 'dovecot.log'}\n"
        "protocols = imap\n"
        "listen = 127.0.0.1\n"
        f"default_login_user = {login_user}\n"
        f"default_internal_user = {internal_user}\n"
        "disable_plaintext_auth = no\n"
        "auth_mechanisms = plain login\n"
        f"{ssl_settings}"
        f"passdb {{\n  driver = passwd-file\n  args = {directory / 'passwd'}\n}}\n"
        f"userdb {{\n  driver = static\n  args = uid={mail_owner.pw_uid} "
        f"gid={mail_owner.pw_gid} home={home}/%u\n}}\n"
        "mail_location = maildir:~/Maildir\n"
        "service imap-login {\n"
        f"  inet_listener imap {{\n    port = {port if listener == 'imap' else 0}\n  }}\n"
        f"  inet_listener imaps {{\n    port = {port if listener == 'imaps' else 0}\n  }}\n"
        "}\n"
        "service anvil {\n  chroot =\n}\nservice imap-login {\n  chroot =\n}\n"
    )
    output_file = directory / "dovecot.out"
    with output_file.open("wb") as output:
        process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(directory / "dovecot.conf")],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                log_file = directory / "dovecot.log"
                log = log_file.read_text() if log_file.exists() else ""
                output = output_file.read_text(errors="replace")
                raise RuntimeError(f"dovecot did not start ({listener}): {output}\n{log}")
            time.sleep(0.1)
        yield ImapServer("127.0.0.1", port, USER, PASSWORD, listener == "imaps")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
