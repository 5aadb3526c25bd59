"""The catalogue of bulletin's fixed words: those of the edition's email, pages and feeds,
and of the subscriber web service. English here is the source text of the gettext catalogs
(`render/i18n.py`); one lookup, `labels`, gives every word in a reader's language, English
wherever a catalog has no translation yet. Dates are CLDR's, through Babel.
"""

from __future__ import annotations

from pathlib import Path

from bulletin.render.i18n import date_range, language_name, translations

__all__ = ["ENGLISH", "LANGUAGE_NAMES", "date_range", "label", "labels"]


class _Names(dict[str, str]):
    """Each language as it names itself, from CLDR: `LANGUAGE_NAMES[code]`."""

    def __missing__(self, code: str) -> str:
        return language_name(code)

    def get(self, code: str, default: str | None = None) -> str:  # type: ignore[override]
        return self[code]


#: Each language as it names itself, for the language choice of the web service.
LANGUAGE_NAMES = _Names()

#: Every fixed word by name, in English: the msgid of each catalog message, whose msgctxt
#: is the name.
ENGLISH = {
    # the published edition: its email, pages and feeds
    "view_in_browser": "View this edition in your browser",
    "read_online": "Read online",
    "unsubscribe": "Unsubscribe",
    "unsubscribe_text": "You receive this because you subscribed to {list}.",
    "archive": "Archive",
    "editions": "Editions",
    "edition": "Edition",
    "feeds": "Feeds",
    "add_to_calendar": "Add to calendar",
    "calendar": "Calendar",
    "calendars": "Calendars",
    "no_editions": "Nothing has been published yet.",
    "entries_in_edition": "In this edition",
    # the subscriber web service: its pages and emails
    "subscribe_title": "Subscribe",
    "subscribe_intro": "Receive {site} by email. We send a message to confirm your address "
    "first; nothing else is sent until you confirm.",
    "email_label": "Email address",
    "lists_label": "Lists",
    "language_label": "Language",
    "subscribe_button": "Subscribe",
    "check_inbox_title": "Check your inbox",
    "check_inbox": "If the address can receive email, a message with a confirmation link "
    "is on its way. The link is valid for {days} days. Nothing is sent to the address until "
    "it is confirmed.",
    "confirm_title": "Confirm your subscription",
    "confirm_intro": "Confirm that {address} should receive:",
    "confirm_button": "Confirm subscription",
    "confirmed_title": "You are subscribed",
    "confirmed": "Thank you. {address} will receive the lists below.",
    "unsubscribe_title": "Unsubscribe",
    "unsubscribe_question": "Stop sending {list} to {address}?",
    "unsubscribe_button": "Unsubscribe",
    "unsubscribed_title": "You are unsubscribed",
    "unsubscribed": "{address} will no longer receive {list}.",
    "manage_link": "Change your lists, language or data",
    "preferences_by_email": "To change your lists, language or data, we can email {address} "
    "a link to its preferences.",
    "preferences_send_button": "Email me a link to my preferences",
    "unsubscribe_external": "{list} is a mailing list kept by its own list server ({address}), "
    "not by {site}: this link cannot take you off it, and nothing was changed. To leave, use "
    "the unsubscribe instructions of that list server (its emails carry them), or write to "
    "the list's owner.",
    "unsubscribe_partner": "This address receives {site} as the partner organisation {list}: "
    "this link cannot stop it, and nothing was changed. To stop, write to {contact}.",
    "invalid_title": "This link does not work",
    "invalid_link": "The link is incomplete, altered or expired. Copy the whole link from the "
    "email, or subscribe again.",
    "preferences_title": "Your preferences",
    "preferences_intro": "Lists that {address} receives:",
    "save_button": "Save preferences",
    "saved": "Your preferences are saved.",
    "export_title": "Your data",
    "export_intro": "Download everything we hold about your address, as a JSON file.",
    "export_button": "Download my data",
    "erase_title": "Erase my data",
    "erase_intro": "Remove your address from every list and from our records. This cannot "
    "be undone.",
    "erase_confirm": "Yes, erase my address",
    "erase_button": "Erase my data",
    "erase_unticked": "Tick the box to confirm that your data should be erased.",
    "erased_title": "Your data is erased",
    "erased": "We no longer hold your address. Our delivery records keep only a code that "
    "cannot be turned back into it, so that no edition is sent to you twice.",
    "error_email": "Enter a valid email address, like name@example.org.",
    "error_lists": "Choose at least one list.",
    "error_language": "Choose a language from the list.",
    "error_form": "The form has expired or came from another site. Please try again.",
    "too_many": "Too many attempts. Please wait a few minutes and try again.",
    "not_found_title": "Page not found",
    "not_found": "There is no page at this address.",
    "archive_missing": "Nothing has been published yet.",
    "subscribe_link": "Subscribe by email",
    "confirm_email_subject": "Confirm your subscription to {site}",
    "confirm_email_intro": "Someone, probably you, asked for {address} to receive:",
    "confirm_email_action": "To confirm, open this link (valid for {days} days):",
    "confirm_email_ignore": "If it was not you, ignore this message: nothing more will be sent.",
    "preferences_button": "Manage my subscription",
    "preferences_request_title": "Manage your subscription",
    "preferences_request_intro": "Enter your address: we send it a link to change your lists "
    "or language, or to download or erase your data.",
    "send_link_button": "Send me a link",
    "link_sent_title": "Check your inbox",
    "link_sent": "If we hold this address, a message with a link is on its way. The link is "
    "valid for {days} days.",
    "preferences_email_subject": "Manage your subscription to {site}",
    "preferences_email_intro": "Someone, probably you, asked for a link to manage what "
    "{address} receives.",
    "preferences_email_action": "To change your lists or language, or to download or erase "
    "your data, open this link (valid for {days} days):",
    "preferences_email_ignore": "If it was not you, ignore this message: nothing changes.",
}


def labels(language: str, site: Path | None = None) -> dict[str, str]:
    """The fixed words in `language`, from the site's catalog, else bulletin's, else English."""
    catalog = translations(language, site)
    return {key: catalog.pgettext(key, english) for key, english in ENGLISH.items()}


def label(language: str, key: str, site: Path | None = None) -> str:
    """One fixed word of `labels`, without looking up all the others."""
    return translations(language, site).pgettext(key, ENGLISH[key])
