"""A site's configuration: bulletin.toml read once into one typed, validated `Config`.

model       the frozen dataclasses, one per table of bulletin.toml
base        what every table shares: no unknown keys, no control characters; URL and address checks
people      who may approve ([approvers]) and where reports come back ([inbound])
loading     TOML to the model; every problem named with its key and line
validation  the pydantic model of each table, which checks a changed bulletin.toml
cache       the checked configuration kept for the next command
secrets     the secrets the configuration names, looked up when a run needs them
"""

from bulletin.config.loading import CONFIG_FILE, load_config
from bulletin.config.model import (
    DEFAULT_DATABASE,
    DKIM_REQUIRED_HEADERS,
    DKIM_UNSIGNABLE_HEADERS,
    Config,
    Database,
    Delivery,
    Dkim,
    Funding,
    FundingText,
    MailingList,
    Partner,
    Sender,
    Site,
    Smtp,
)

__all__ = [
    "CONFIG_FILE",
    "DEFAULT_DATABASE",
    "DKIM_REQUIRED_HEADERS",
    "DKIM_UNSIGNABLE_HEADERS",
    "Config",
    "Database",
    "Delivery",
    "Dkim",
    "Funding",
    "FundingText",
    "MailingList",
    "Partner",
    "Sender",
    "Site",
    "Smtp",
    "load_config",
]
