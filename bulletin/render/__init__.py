"""Renders entries to what readers get: the email (MJML → HTML, plain text), web pages,
feeds and partner payloads. Values in, values out: nothing here writes or sends.

    renderer   the email edition and the web pages, from the site's Jinja templates
    feeds      RSS 2.0 and Atom 1.0, per site, tag and language
    payloads   which entries concern each audience; the partners' webhook events
    words      the fixed words of emails and pages, in each language
"""
