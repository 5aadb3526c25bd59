"""Listens: reads what comes back to the site (bounces, spam complaints, mailto
unsubscribes) and acts on the reports that prove they are about mail bulletin sent.

sources     where messages come from: an IMAP folder, a Maildir, an mbox file
reports     the standard report formats: DSN (RFC 3464) and ARF (RFC 5965)
classify    what a message is: bounce, complaint, unsubscribe, auto-reply, other
policy      whom it is about, proven by a VERP token or a Message-ID we sent; what to do
events      the inbound_events table: each message processed once, soft bounces counted
processing  a source's messages, one by one, into a report
"""
