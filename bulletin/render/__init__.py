"""Renders entries to what readers get: the email (MJML → HTML, plain text), web pages,
feeds and partner payloads. Values in, values out: nothing here writes or sends.

    renderer   the email edition and the web pages, from the site's Jinja templates
    templates  the one Jinja environment factory (site templates, then built-in); MJML
    notices    which funding notice each output carries, and how it is shown
    feeds      RSS 2.0 and Atom 1.0, per site, tag and language
    calendars  iCalendar files: each event's, the site's, per language and per tag
    written    the calendar files of public/ read as bulletin wrote them; new events put in
    payloads   which entries concern each audience; the partners' webhook events
    words      the catalogue of fixed words (email, pages, web service), in each language
"""
