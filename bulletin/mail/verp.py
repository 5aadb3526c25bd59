"""Makes and reads the per-message addresses of VERP: the envelope sender a bounce returns to
(`bounces+TOKEN@DOMAIN`) and the mailto unsubscribe (`unsubscribe+TOKEN@DOMAIN`), each token
naming the edition and the message (hence the recipient) and signed with the site's key."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bulletin.config.model import Config
from bulletin.tokens import Signer

BOUNCE = "verp-bounce"
UNSUBSCRIBE = "verp-unsubscribe"
_TAGGED = re.compile(rb"([A-Za-z0-9._-]{1,64})\+([A-Za-z0-9._-]{8,200})@([A-Za-z0-9.-]{1,253})")


@dataclass(frozen=True)
class Tag:
    """What a genuine VERP address says: why it was made, the edition and the message name
    (the left part of the Message-ID after the edition)."""

    purpose: str
    edition_id: str
    name: str


class Verp:
    """The VERP addresses of a site with `[inbound]`."""

    def __init__(self, return_path: str, unsubscribe: str, signer: Signer) -> None:
        self._bounce = return_path.lower().partition("@")[::2]
        self._unsubscribe = unsubscribe.lower().partition("@")[::2]
        self._signer = signer

    @classmethod
    def for_config(cls, config: Config, signer: Signer) -> Verp | None:
        """The site's VERP, or None when it has no `[inbound]` (then nothing changes)."""
        inbound = config.inbound
        return None if inbound is None else cls(inbound.return_path, inbound.unsubscribe, signer)

    def envelope(self, edition_id: str, name: str) -> str:
        """The envelope sender (MAIL FROM) of the message `name` of the edition."""
        local, domain = self._bounce
        return f"{local}+{self._signer.address_token(BOUNCE, edition_id, name)}@{domain}"

    def mailto(self, edition_id: str, name: str) -> str:
        """The address a reader writes to, to leave the list the message came from."""
        local, domain = self._unsubscribe
        return f"{local}+{self._signer.address_token(UNSUBSCRIBE, edition_id, name)}@{domain}"

    def tags(self, data: bytes) -> list[Tag]:
        """Every genuine VERP address in `data` (headers, quoted original, anywhere), once."""
        found: list[Tag] = []
        wanted = {self._bounce: BOUNCE, self._unsubscribe: UNSUBSCRIBE}
        for match in _TAGGED.finditer(data):
            local, token, domain = (part.decode("ascii").lower() for part in match.groups())
            purpose = wanted.get((local, domain))
            if purpose is None:
                continue
            fields = self._signer.verify_address_token(purpose, token, 2)
            if fields is not None:
                tag = Tag(purpose, fields[0], fields[1])
                if tag not in found:
                    found.append(tag)
        return found
