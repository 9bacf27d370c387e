"""Thin typed hooks over the HTTP core (creator_sync.http)."""
