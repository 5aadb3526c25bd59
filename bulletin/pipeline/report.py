"""Summarises a publish or build run: the SPEC's JSON object and the human summary."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from bulletin.redaction import redact_urls
from bulletin.store.statuses import Channel, DeliveryStatus

SENT, FAILED, SKIPPED, PENDING = (
    DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.SKIPPED, DeliveryStatus.PENDING
)  # fmt: skip
#: A partner's status in the report: the worst of its deliveries, first here.
PARTNER_STATUS = (FAILED, PENDING, SKIPPED, SENT)


@dataclass
class Report:
    edition: str | None
    entries: list[str]
    email: dict[str, int] = field(default_factory=lambda: {SENT: 0, FAILED: 0, SKIPPED: 0})
    per_list: dict[str, dict[str, int]] = field(default_factory=dict)
    partners: dict[str, str] = field(default_factory=dict)
    public: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dry_run: bool = False
    would_send: dict[str, int] = field(default_factory=dict)
    outbox: str | None = None
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # target, to, why
    per_partner: dict[str, dict[str, int]] = field(default_factory=dict)
    compliance: str | None = None  # the EU-notice check's verdict, for the Markdown report
    outcome: str | None = None  # a run that sent nothing on purpose says why (rejected, ...)

    def shown_failures(self) -> list[tuple[str, str, str]]:
        """The failures as reports show them: a URL's user:password never appears (rows
        recorded by older versions can hold a webhook URL with them)."""
        return [(t, redact_urls(r), redact_urls(why)) for t, r, why in self.failures]

    @property
    def failed(self) -> bool:
        return self.email[FAILED] > 0 or FAILED in self.partners.values()

    def as_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "edition": self.edition,
            "entries": self.entries,
            "email": self.email,
            "partners": self.partners,
            "public": self.public,
        }
        if self.dry_run:
            data["dry_run"] = True
            data["would_send"] = self.would_send
        if self.notes:
            data["notes"] = self.notes
        if self.failures:
            data["failures"] = [
                {"target": t, "recipient": r, "reason": why} for t, r, why in self.shown_failures()
            ]
        return data

    def add_tally(self, tally: Mapping[tuple[str, str, str], int]) -> None:
        for (channel, target, status), count in sorted(tally.items()):
            if channel == Channel.EMAIL:
                key = status if status in self.email else FAILED
                if status == PENDING:
                    continue
                self.email[key] += count
                self.per_list.setdefault(target, {})[status] = count
            else:
                self.per_partner.setdefault(target, {})[status] = count
                current = self.partners.get(target)
                ranks = PARTNER_STATUS.index
                if current is None or ranks(status) < ranks(current):
                    self.partners[target] = status

    def markdown(self) -> str:
        """The run's report as Markdown, for the Prefect UI."""
        out = [f"# Edition {self.edition or '(none)'}", ""]
        if self.outcome:
            out += [f"**{self.outcome}**", ""]
        out += [f"- {note}" for note in self.notes if not self.entries]
        if self.compliance:
            out += ["## EU notice check", "", self.compliance, ""]
        if self.entries:
            out += ["## Entries", "", *[f"- `{slug}`" for slug in self.entries], ""]
        out += ["## Email", "", "| list | sent | failed | skipped |", "|---|---|---|---|"]
        for name, counts in self.per_list.items():
            out.append(
                f"| {name} | {counts.get(SENT, 0)} | {counts.get(FAILED, 0)} | "
                f"{counts.get(SKIPPED, 0)} |"
            )
        if self.would_send:
            out += ["", "## Recipients", "", "| list or partner | recipients |", "|---|---|"]
            out += [f"| {name} | {count} |" for name, count in self.would_send.items()]
        if self.partners:
            out += ["", "## Partners", "", "| partner | status | sent | failed | skipped |"]
            out.append("|---|---|---|---|---|")
            for name, status in self.partners.items():
                counts = self.per_partner.get(name, {})
                out.append(
                    f"| {name} | {status} | {counts.get(SENT, 0)} | "
                    f"{counts.get(FAILED, 0)} | {counts.get(SKIPPED, 0)} |"
                )
        if self.failures:
            out += [
                "",
                "## Failed for good",
                "",
                "| list or partner | recipient | reason |",
                "|---|---|---|",
            ]
            out += [
                f"| {t} | {r} | {why.replace('|', '/')} |" for t, r, why in self.shown_failures()
            ]
        if self.notes and self.entries:
            out += ["", "## Notes", "", *[f"- {note}" for note in self.notes]]
        if self.edition and not self.dry_run and not self.would_send:
            out += ["", "## Who got it", "",
                    f"`bulletin status {self.edition}` shows, per list and partner, who got it "
                    f"and who did not, and why; `bulletin resend {self.edition}` sends again "
                    "what failed."]  # fmt: skip
        return "\n".join(out) + "\n"

    def lines(self) -> Sequence[str]:
        out = list(self.notes)
        if self.outcome:
            out.append(self.outcome)
        elif not self.edition:
            out.append("Nothing to publish: no approved entry is waiting.")
            if self.public:
                out.append(f"  public/: {len(self.public)} files written")
        elif self.dry_run:
            out.append(
                f"Dry run of edition {self.edition}: {len(self.entries)} entries; "
                "nothing was sent or written."
            )
            for target, count in self.would_send.items():
                out.append(f"  would send to {target}: {count}")
        else:
            out.append(f"Edition {self.edition}: {len(self.entries)} entries")
            lists = ", ".join(
                f"{name} {sum(c for s, c in counts.items() if s == SENT)}"
                for name, counts in self.per_list.items()
            )
            e = self.email
            out.append(
                f"  email: {e[SENT]} sent, {e[FAILED]} failed, {e[SKIPPED]} "
                f"skipped" + (f" ({lists})" if lists else "")
            )
            if self.partners:
                out.append("  partners: " + ", ".join(f"{k} {v}" for k, v in self.partners.items()))
            if self.outbox:
                out.append(f"  outbox: {self.outbox}")
            for target, recipient, why in self.shown_failures()[:20]:
                out.append(f"  failed: {target} → {recipient}: {why}")
            if len(self.failures) > 20:
                out.append(f"  ... and {len(self.failures) - 20} more failures")
            if self.failures:
                out.append(f"  who got it, who did not: bulletin status {self.edition}")
        if self.public:
            out.append(f"  public/: {len(self.public)} files written")
        return out
