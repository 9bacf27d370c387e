from __future__ import annotations

from typing import Any

from creator_sync.errors import CreatorSyncConfigError
from creator_sync.retry import DEFAULT_RETRY_ARGS, VENDOR_RETRY_POLICY


def vendor_defaults(kwargs: dict[str, Any], pool: str) -> dict[str, Any]:
    """Operator kwargs with creator-sync defaults (pool, retry policy, retries with backoff).

    Anything given explicitly or through a DAG's default_args wins.
    """
    dag_defaults = kwargs.get("default_args") or {}
    for key, value in {"pool": pool, "retry_policy": VENDOR_RETRY_POLICY, **DEFAULT_RETRY_ARGS}.items():
        if key not in kwargs and key not in dag_defaults:
            kwargs[key] = value
    return kwargs


def as_bool(value: Any, name: str) -> bool:
    """A templated boolean: True/False, or a rendered string such as "True", "false", "1", "0"."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "1", "yes", "y", "on"):
            return True
        if text in ("false", "0", "no", "n", "off", ""):
            return False
    raise CreatorSyncConfigError(f"{name} must be a boolean, got {value!r}")


def as_list(value: Any, name: str) -> list[str]:
    """A templated list of strings: a list, or a rendered one (``"['A', 'B']"`` or JSON)."""
    if isinstance(value, str):
        import ast

        try:
            value = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            raise CreatorSyncConfigError(f"{name} must be a list of strings, got {value!r}") from None
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise CreatorSyncConfigError(f"{name} must be a list of strings, got {value!r}")
    return list(value)


def as_int(value: Any, name: str, *, minimum: int | None = None) -> int:
    """A templated whole number (``"20"`` once rendered)."""
    try:
        number = int(str(value).strip()) if not isinstance(value, bool) else None
    except ValueError:
        number = None
    if number is None or (minimum is not None and number < minimum):
        low = f" >= {minimum}" if minimum is not None else ""
        raise CreatorSyncConfigError(f"{name} must be a whole number{low}, got {value!r}")
    return number
