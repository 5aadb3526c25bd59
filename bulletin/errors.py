"""The exceptions bulletin raises, and the problems it reports to users.

    BulletinError                  root; carries an exit status (SPEC "Exit status")
    ├── ConfigError                bulletin.toml or the command line is wrong        exit 2
    ├── ContentError               entries or rendered outputs have problems         exit 1
    │   └── ComplianceError        an output lacks the EU emblem, statement, disclaimer
    ├── RenderError                a template failed to render (MJML, Jinja)         exit 1
    ├── RunInProgress              another run of the site is planning or sending    exit 4
    ├── DeliveryError              a transport could not deliver a message           exit 3
    │   ├── TransportUnavailable   no message can go: server down, bad TLS or login; the
    │   │                          run stops and the next run resumes
    │   └── WebhookError           a partner's server refused or failed a webhook, with
    │                              its HTTP status and the wait it asked for
    └── SourceError                an inbound mailbox (IMAP, Maildir, mbox) is unreadable exit 3

Errors that list several problems carry them as `Problem` values, so that every problem
is reported at once rather than the first one only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

EXIT_OK = 0
EXIT_CONTENT = 1
EXIT_USAGE = 2
EXIT_DELIVERY = 3
EXIT_BUSY = 4  # another run of the same site is under way: nothing was done


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a file, said so that the user knows what to do."""

    path: str
    code: str
    message: str
    line: int | None = None
    #: "config" problems exit 2, "content" problems exit 1
    kind: str = "content"

    def location(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path

    def __str__(self) -> str:
        return f"{self.location()}: {self.message} [{self.code}]"

    def as_json(self) -> dict[str, object]:
        data: dict[str, object] = {"path": self.path, "code": self.code, "message": self.message}
        if self.line:
            data["line"] = self.line
        return data


class BulletinError(Exception):
    """Root of bulletin's errors; `exit_status` is what the command line exits with."""

    exit_status = EXIT_CONTENT

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class ConfigError(BulletinError):
    exit_status = EXIT_USAGE


class ContentError(BulletinError):
    exit_status = EXIT_CONTENT


class ComplianceError(ContentError):
    pass


class RenderError(BulletinError):
    exit_status = EXIT_CONTENT


class RunInProgress(BulletinError):
    """Another publish, digest, timed or resend run of the site holds its run lock: this
    one did nothing, and can be run again once that one has finished."""

    exit_status = EXIT_BUSY


class DeliveryError(BulletinError):
    """A message could not be delivered; `permanent` says whether a retry could help."""

    exit_status = EXIT_DELIVERY

    def __init__(self, message: str, *, recipient: str = "", permanent: bool = False) -> None:
        super().__init__(message)
        self.recipient = recipient
        self.permanent = permanent


def in_order(problems: list[Problem]) -> list[Problem]:
    """Problems without repeats, by file and line, as a reader goes through them."""
    return sorted(set(problems), key=lambda p: (p.path, p.line or 0, p.code, p.message))


def raise_for(problems: list[Problem]) -> None:
    """Raise the error that matches the worst of `problems`, if there are any."""
    if not problems:
        return
    problems = in_order(problems)
    config = [p for p in problems if p.kind == "config"]
    if config:
        raise ConfigError(
            f"{len(config)} configuration problem(s) to fix; nothing was done", problems
        )
    raise ContentError(f"{len(problems)} problem(s) to fix; nothing was sent or written", problems)


def display_path(path: Path, root: Path) -> str:
    """`path` relative to the site root where possible, as users see it in messages; a
    symbolic link is named as it is, not as the file it leads to."""
    try:
        return (path.parent.resolve() / path.name).relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


class TransportUnavailable(DeliveryError):
    """The transport cannot deliver anything; no recipient is at fault.

    It affects every message of a run, so the run stops rather than failing addresses one
    by one; `misconfigured` says retrying cannot help until the configuration changes.
    """

    def __init__(self, message: str, *, misconfigured: bool) -> None:
        super().__init__(message, permanent=False)
        self.misconfigured = misconfigured
        if misconfigured:
            self.exit_status = EXIT_USAGE


class WebhookError(DeliveryError):
    """A partner's server did not take a webhook: `status` is its HTTP status (None when no
    answer came), `retry_after` the seconds it asked us to wait before trying again."""

    def __init__(
        self,
        message: str,
        *,
        recipient: str = "",
        permanent: bool = False,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, recipient=recipient, permanent=permanent)
        self.status = status
        self.retry_after = retry_after


class SourceError(BulletinError):
    """An inbound source (IMAP folder, Maildir, mbox file) cannot be read or logged into."""

    exit_status = EXIT_DELIVERY
