"""bulletin publishes approved entries as email, feeds and a web archive, EU disclaimer included."""

__version__ = "0.1.0"
