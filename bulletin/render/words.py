"""The catalogue of bulletin's fixed words: those of the edition's email, pages and feeds,
and of the subscriber web service, in the languages of the reference user; month names and
date ranges. One lookup, `labels`, with English wherever a word has no translation yet.
"""

from __future__ import annotations

import datetime as dt

#: Each language as it names itself, for the language choice of the web service.
LANGUAGE_NAMES = {"en": "English", "ro": "Română", "bg": "Български"}

_ENGLISH = {
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

_ROMANIAN = {
    # the published edition: its email, pages and feeds
    "view_in_browser": "Vedeți această ediție în browser",
    "read_online": "Citiți online",
    "unsubscribe": "Dezabonare",
    "unsubscribe_text": "Primiți acest mesaj pentru că v-ați abonat la {list}.",
    "archive": "Arhivă",
    "editions": "Ediții",
    "edition": "Ediția",
    "feeds": "Fluxuri",
    "add_to_calendar": "Adăugați în calendar",
    "calendar": "Calendar",
    "calendars": "Calendare",
    "no_editions": "Nu a fost publicat nimic încă.",
    "entries_in_edition": "În această ediție",
    # the subscriber web service: its pages and emails
    "subscribe_title": "Abonare",
    "subscribe_intro": "Primiți {site} prin email. Vă trimitem mai întâi un mesaj pentru a "
    "confirma adresa; nu trimitem nimic altceva până nu confirmați.",
    "email_label": "Adresa de email",
    "lists_label": "Liste",
    "language_label": "Limba",
    "subscribe_button": "Abonare",
    "check_inbox_title": "Verificați-vă căsuța de email",
    "check_inbox": "Dacă adresa poate primi email, un mesaj cu un link de confirmare este pe "
    "drum. Linkul este valabil {days} zile. Nu trimitem nimic la această adresă până nu este "
    "confirmată.",
    "confirm_title": "Confirmați abonarea",
    "confirm_intro": "Confirmați că {address} trebuie să primească:",
    "confirm_button": "Confirmă abonarea",
    "confirmed_title": "Sunteți abonat",
    "confirmed": "Vă mulțumim. {address} va primi listele de mai jos.",
    "unsubscribe_title": "Dezabonare",
    "unsubscribe_question": "Nu mai trimitem {list} la {address}?",
    "unsubscribe_button": "Dezabonare",
    "unsubscribed_title": "V-ați dezabonat",
    "unsubscribed": "{address} nu va mai primi {list}.",
    "manage_link": "Schimbați listele, limba sau datele",
    "preferences_by_email": "Pentru a schimba listele, limba sau datele, putem trimite la "
    "{address} un link către preferințele sale.",
    "preferences_send_button": "Trimiteți-mi un link către preferințe",
    "unsubscribe_external": "{list} este o listă de email administrată de propriul server de "
    "liste ({address}), nu de {site}: acest link nu vă poate scoate din ea și nu s-a schimbat "
    "nimic. Pentru a ieși, folosiți instrucțiunile de dezabonare ale acelui server (se află în "
    "emailurile sale) sau scrieți administratorului listei.",
    "unsubscribe_partner": "Această adresă primește {site} ca organizație parteneră {list}: "
    "acest link nu poate opri trimiterea și nu s-a schimbat nimic. Pentru a o opri, scrieți "
    "la {contact}.",
    "invalid_title": "Acest link nu funcționează",
    "invalid_link": "Linkul este incomplet, modificat sau expirat. Copiați linkul întreg din "
    "email sau abonați-vă din nou.",
    "preferences_title": "Preferințele dumneavoastră",
    "preferences_intro": "Listele pe care le primește {address}:",
    "save_button": "Salvează preferințele",
    "saved": "Preferințele au fost salvate.",
    "export_title": "Datele dumneavoastră",
    "export_intro": "Descărcați tot ce deținem despre adresa dumneavoastră, ca fișier JSON.",
    "export_button": "Descarcă datele mele",
    "erase_title": "Ștergeți datele mele",
    "erase_intro": "Eliminați adresa din toate listele și din evidențele noastre. Operațiunea "
    "nu poate fi anulată.",
    "erase_confirm": "Da, ștergeți adresa mea",
    "erase_button": "Șterge datele mele",
    "erase_unticked": "Bifați căsuța pentru a confirma ștergerea datelor.",
    "erased_title": "Datele au fost șterse",
    "erased": "Nu mai deținem adresa dumneavoastră. Evidența trimiterilor păstrează doar un "
    "cod din care adresa nu poate fi refăcută, ca să nu primiți nicio ediție de două ori.",
    "error_email": "Introduceți o adresă de email validă, de exemplu nume@example.org.",
    "error_lists": "Alegeți cel puțin o listă.",
    "error_language": "Alegeți o limbă din listă.",
    "error_form": "Formularul a expirat sau provine de pe alt site. Încercați din nou.",
    "too_many": "Prea multe încercări. Așteptați câteva minute și încercați din nou.",
    "not_found_title": "Pagina nu există",
    "not_found": "Nu există nicio pagină la această adresă.",
    "archive_missing": "Nu a fost publicat nimic încă.",
    "subscribe_link": "Abonare prin email",
    "confirm_email_subject": "Confirmați abonarea la {site}",
    "confirm_email_intro": "Cineva, probabil dumneavoastră, a cerut ca {address} să primească:",
    "confirm_email_action": "Pentru confirmare, deschideți acest link (valabil {days} zile):",
    "confirm_email_ignore": "Dacă nu ați fost dumneavoastră, ignorați acest mesaj: nu vom mai "
    "trimite nimic.",
    "preferences_button": "Gestionați abonamentul",
    "preferences_request_title": "Gestionați abonamentul",
    "preferences_request_intro": "Introduceți adresa: îi trimitem un link pentru a schimba "
    "listele sau limba ori pentru a descărca sau șterge datele dumneavoastră.",
    "send_link_button": "Trimiteți-mi un link",
    "link_sent_title": "Verificați-vă căsuța de email",
    "link_sent": "Dacă deținem această adresă, un mesaj cu un link este pe drum. Linkul este "
    "valabil {days} zile.",
    "preferences_email_subject": "Gestionați abonamentul la {site}",
    "preferences_email_intro": "Cineva, probabil dumneavoastră, a cerut un link pentru a "
    "gestiona ce primește {address}.",
    "preferences_email_action": "Pentru a schimba listele sau limba ori pentru a descărca sau "
    "șterge datele, deschideți acest link (valabil {days} zile):",
    "preferences_email_ignore": "Dacă nu ați fost dumneavoastră, ignorați acest mesaj: nu se "
    "schimbă nimic.",
}

_BULGARIAN = {
    # the published edition: its email, pages and feeds
    "view_in_browser": "Вижте това издание в браузъра",
    "read_online": "Прочетете онлайн",
    "unsubscribe": "Отписване",
    "unsubscribe_text": "Получавате това съобщение, защото сте абонирани за {list}.",
    "archive": "Архив",
    "editions": "Издания",
    "edition": "Издание",
    "feeds": "Емисии",
    "add_to_calendar": "Добавете в календара",
    "calendar": "Календар",
    "calendars": "Календари",
    "no_editions": "Все още няма публикации.",
    "entries_in_edition": "В това издание",
    # the subscriber web service: its pages and emails
    "subscribe_title": "Абонамент",
    "subscribe_intro": "Получавайте {site} по имейл. Първо ще ви изпратим съобщение, за да "
    "потвърдите адреса си; нищо друго не се изпраща, докато не потвърдите.",
    "email_label": "Имейл адрес",
    "lists_label": "Списъци",
    "language_label": "Език",
    "subscribe_button": "Абонирайте се",
    "check_inbox_title": "Проверете пощата си",
    "check_inbox": "Ако адресът може да получава имейли, съобщение с линк за потвърждение е "
    "на път. Линкът е валиден {days} дни. Нищо не се изпраща на адреса, докато не бъде "
    "потвърден.",
    "confirm_title": "Потвърдете абонамента си",
    "confirm_intro": "Потвърдете, че {address} трябва да получава:",
    "confirm_button": "Потвърдете абонамента",
    "confirmed_title": "Абонирани сте",
    "confirmed": "Благодарим ви. {address} ще получава списъците по-долу.",
    "unsubscribe_title": "Отписване",
    "unsubscribe_question": "Да спрем ли изпращането на {list} до {address}?",
    "unsubscribe_button": "Отпишете се",
    "unsubscribed_title": "Отписахте се",
    "unsubscribed": "{address} повече няма да получава {list}.",
    "manage_link": "Променете списъците, езика или данните си",
    "preferences_by_email": "За да промените списъците, езика или данните си, можем да "
    "изпратим на {address} връзка към неговите настройки.",
    "preferences_send_button": "Изпратете ми връзка към настройките",
    "unsubscribe_external": "{list} е пощенски списък, поддържан от собствен сървър ({address}), "
    "а не от {site}: тази връзка не може да ви отпише от него и нищо не е променено. За да "
    "излезете, използвайте инструкциите за отписване на този сървър (те са в неговите имейли) "
    "или пишете на собственика на списъка.",
    "unsubscribe_partner": "Този адрес получава {site} като партньорската организация {list}: "
    "тази връзка не може да спре изпращането и нищо не е променено. За да го спрете, пишете на "
    "{contact}.",
    "invalid_title": "Този линк не работи",
    "invalid_link": "Линкът е непълен, променен или изтекъл. Копирайте целия линк от имейла "
    "или се абонирайте отново.",
    "preferences_title": "Вашите предпочитания",
    "preferences_intro": "Списъци, които {address} получава:",
    "save_button": "Запазете предпочитанията",
    "saved": "Предпочитанията ви са запазени.",
    "export_title": "Вашите данни",
    "export_intro": "Изтеглете всичко, което съхраняваме за вашия адрес, като JSON файл.",
    "export_button": "Изтеглете данните ми",
    "erase_title": "Изтрийте данните ми",
    "erase_intro": "Премахнете адреса си от всички списъци и от нашите записи. Това не може "
    "да бъде отменено.",
    "erase_confirm": "Да, изтрийте адреса ми",
    "erase_button": "Изтрийте данните ми",
    "erase_unticked": "Отметнете полето, за да потвърдите изтриването на данните.",
    "erased_title": "Данните ви са изтрити",
    "erased": "Вече не съхраняваме вашия адрес. Записите за изпращане пазят само код, от "
    "който адресът не може да бъде възстановен, за да не получите издание два пъти.",
    "error_email": "Въведете валиден имейл адрес, например name@example.org.",
    "error_lists": "Изберете поне един списък.",
    "error_language": "Изберете език от списъка.",
    "error_form": "Формулярът е изтекъл или идва от друг сайт. Опитайте отново.",
    "too_many": "Твърде много опити. Изчакайте няколко минути и опитайте отново.",
    "not_found_title": "Страницата не е намерена",
    "not_found": "На този адрес няма страница.",
    "archive_missing": "Все още няма публикации.",
    "subscribe_link": "Абонамент по имейл",
    "confirm_email_subject": "Потвърдете абонамента си за {site}",
    "confirm_email_intro": "Някой, вероятно вие, поиска {address} да получава:",
    "confirm_email_action": "За да потвърдите, отворете този линк (валиден {days} дни):",
    "confirm_email_ignore": "Ако не сте били вие, пренебрегнете това съобщение: нищо повече "
    "няма да бъде изпратено.",
    "preferences_button": "Управление на абонамента",
    "preferences_request_title": "Управление на абонамента",
    "preferences_request_intro": "Въведете адреса си: ще му изпратим линк, за да промените "
    "списъците или езика или да изтеглите или изтриете данните си.",
    "send_link_button": "Изпратете ми линк",
    "link_sent_title": "Проверете пощата си",
    "link_sent": "Ако съхраняваме този адрес, съобщение с линк е на път. Линкът е валиден "
    "{days} дни.",
    "preferences_email_subject": "Управление на абонамента ви за {site}",
    "preferences_email_intro": "Някой, вероятно вие, поиска линк за управление на това, "
    "което получава {address}.",
    "preferences_email_action": "За да промените списъците или езика или да изтеглите или "
    "изтриете данните си, отворете този линк (валиден {days} дни):",
    "preferences_email_ignore": "Ако не сте били вие, пренебрегнете това съобщение: нищо не "
    "се променя.",
}

#: The words by language; English has every word, the others may lack some.
WORDS: dict[str, dict[str, str]] = {"en": _ENGLISH, "ro": _ROMANIAN, "bg": _BULGARIAN}

MONTHS: dict[str, tuple[str, ...]] = {
    "en": ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"),
    "ro": ("ianuarie", "februarie", "martie", "aprilie", "mai", "iunie", "iulie", "august",
           "septembrie", "octombrie", "noiembrie", "decembrie"),
    "bg": ("януари", "февруари", "март", "април", "май", "юни", "юли", "август",
           "септември", "октомври", "ноември", "декември"),
}  # fmt: skip


def labels(language: str) -> dict[str, str]:
    """The fixed words in `language`, English where a word has no translation yet."""
    return {**WORDS["en"], **WORDS.get(language, {})}


def date_range(start: dt.date, end: dt.date | None, language: str) -> str:
    """'12–13 November 2019', '30 November – 2 December 2019', in the entry's language."""
    months = MONTHS.get(language)
    if months is None:
        return start.isoformat() + (f" – {end.isoformat()}" if end and end != start else "")

    def day(d: dt.date, year: bool = True) -> str:
        text = f"{d.day} {months[d.month - 1]}"
        return f"{text} {d.year}" if year else text

    if not end or end == start:
        return day(start)
    if (start.year, start.month) == (end.year, end.month):
        return f"{start.day}–{day(end)}"
    if start.year == end.year:
        return f"{day(start, year=False)} – {day(end)}"
    return f"{day(start)} – {day(end)}"
