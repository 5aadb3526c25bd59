"""Debian's Postfix as a private mail server for the end-to-end inbound test: its own
configuration, queue and mailboxes under a temporary directory, smtpd on a free port of
127.0.0.1, never the system's instance. scripts/test installs the package.

It hosts the domain example.org as virtual mailboxes (Maildir): the addresses in
`mailboxes` exist; mail to any other address there is accepted during the SMTP dialogue
and then bounced by the delivery agent ("user unknown"), as a real provider does.
"""

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

POSTFIX = "/usr/sbin/postfix"
DOMAIN = "example.org"

MASTER_CF = """\
{listen} inet n - n - - smtpd
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
local unix - n n - - local
virtual unix - n n - - virtual
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
"""


@dataclass(frozen=True)
class PostfixServer:
    host: str
    port: int
    mail: Path  # one Maildir per mailbox: mail/<local part>/

    def maildir(self, local_part: str) -> Path:
        return self.mail / local_part

    def log(self) -> str:
        path = self.mail.parent / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def postfix(mailboxes: list[str]) -> Iterator[PostfixServer]:
    """A running private Postfix whose example.org has the `mailboxes` (local parts)."""
    if not Path(POSTFIX).exists() or os.geteuid() != 0:
        reason = "Postfix needs to be installed and started as root (scripts/test does both)"
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(reason)
        pytest.skip(reason)
    directory = Path(tempfile.mkdtemp(prefix="bulletin-postfix-"))
    directory.chmod(0o755)  # the unprivileged daemons enter it
    port = _free_port()
    owner = pwd.getpwnam("nobody")
    config = directory / "config"
    mail = directory / "mail"
    for folder in (config, mail, directory / "queue", directory / "data"):
        folder.mkdir()
    os.chown(mail, owner.pw_uid, owner.pw_gid)
    os.chown(directory / "data", pwd.getpwnam("postfix").pw_uid, -1)
    (directory / "vmailbox").write_text("".join(f"{name}@{DOMAIN} {name}/\n" for name in mailboxes))
    (config / "master.cf").write_text(MASTER_CF.format(listen=f"127.0.0.1:{port}"))
    (config / "main.cf").write_text(
        "compatibility_level = 3.6\n"
        f"queue_directory = {directory / 'queue'}\n"
        f"data_directory = {directory / 'data'}\n"
        f"maillog_file = {directory / 'maillog'}\nmaillog_file_prefixes = {directory}\n"
        "mail_owner = postfix\nsetgid_group = postdrop\n"
        "myhostname = mx.bulletin.test\nmydomain = bulletin.test\nmydestination =\n"
        "inet_interfaces = 127.0.0.1\ninet_protocols = ipv4\nmynetworks = 127.0.0.0/8\n"
        "alias_maps =\nalias_database =\nrelayhost =\nbiff = no\n"
        f"virtual_mailbox_domains = {DOMAIN}\n"
        f"virtual_mailbox_maps = texthash:{directory / 'vmailbox'}\n"
        f"virtual_mailbox_base = {mail}\n"
        f"virtual_uid_maps = static:{owner.pw_uid}\nvirtual_gid_maps = static:{owner.pw_gid}\n"
        # bounces+TOKEN@example.org is the mailbox bounces@example.org
        "recipient_delimiter = +\n"
        # Accept unknown users in the dialogue: the bounce comes later, as a DSN.
        "smtpd_reject_unlisted_recipient = no\n"
        "smtpd_relay_restrictions = permit_mynetworks, reject\n"
    )
    command = [POSTFIX, "-c", str(config)]
    started = subprocess.run([*command, "start"], capture_output=True, text=True, check=False)
    if started.returncode != 0:
        log = (
            (directory / "maillog").read_text(errors="replace")
            if (directory / "maillog").exists()
            else ""
        )
        shutil.rmtree(directory, ignore_errors=True)
        raise RuntimeError(f"postfix did not start: {started.stdout}{started.stderr}{log}")
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"postfix does not listen on {port}")
            time.sleep(0.1)
        yield PostfixServer("127.0.0.1", port, mail)
    finally:
        subprocess.run([*command, "stop"], capture_output=True, check=False)
        shutil.rmtree(directory, ignore_errors=True)


def wait_for_mail(maildir: Path, count: int = 1, timeout: float = 60) -> list[Path]:
    """The files in `maildir`/new once there are `count` of them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted((maildir / "new").glob("*")) if (maildir / "new").is_dir() else []
        if len(found) >= count:
            return found
        time.sleep(0.2)
    raise AssertionError(f"no mail arrived in {maildir} within {timeout} s")
