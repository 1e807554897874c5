"""The one error for configuration that cannot be used, kept apart from `adapters.settings`
so modules that only raise it (a rebuild's lane processes import them) need not load the
settings machinery."""

from __future__ import annotations


class ConfigError(ValueError):
    """Configuration that cannot be used; the message names the file and the key."""
