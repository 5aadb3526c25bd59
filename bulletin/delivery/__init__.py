"""Delivers messages exactly once: transports, the sending engine and the partner phase.

transports   the Transport base class and its outcomes; outbox, in-memory; TransportFactory
configured   the transports a site's configuration names (outbox, or SMTP and webhooks)
smtp         one persistent SMTP connection
webhooks     signed partner webhooks (Standard Webhooks) over HTTPS
engine       an edition's pending email over a pool of connections, with retries
partners     the partner phase: each partner once, in a thread of its own
"""
