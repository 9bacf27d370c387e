"""The package's base error and its configuration error, on the floor of the settings (creator_sync.settings
raises it for a bad value): everything above can raise them. HTTP and vendor errors are in
creator_sync.http.errors, a vendor-specific error beside its hook."""

from __future__ import annotations


class CreatorSyncError(Exception):
    """Base class of everything raised by creator_sync."""


class CreatorSyncConfigError(CreatorSyncError, ValueError):
    """A local mistake in arguments or configuration (unknown resource, missing account_id, ...)."""
