"""The one error for configuration that cannot be used, kept apart from `adapters.settings`
so modules that only raise it need not load the settings machinery (a rebuild's lane
process imports them afresh where it is spawned rather than forked: macOS, Windows)."""

from __future__ import annotations


class ConfigError(ValueError):
    """Configuration that cannot be used; the message names the file and the key."""
