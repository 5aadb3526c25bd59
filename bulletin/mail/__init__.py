"""Email as bulletin sends it: messages, compiled editions and DKIM signatures.

message    the unit a transport delivers, and its bytes as SMTP's DATA step sends them
builder    what every email carries (sender, Message-ID, MIME, inline emblem, DKIM); one-off emails
compiled   an edition's email compiled once, personalised per recipient
dkim       DKIM signing (RFC 6376) over both unsubscribe headers
notify     the failure notice to the comms address
"""
