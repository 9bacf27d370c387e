"""Where run files live: the data directory, local (`file://`) or object storage (`s3://`), and the staging
of a directory between the two.

`CREATOR_SYNC_DATA_URL` is an Airflow `ObjectStoragePath` URL: `file:///opt/airflow/data` (default
`file://$AIRFLOW_HOME/data`) or `s3://bucket/prefix` through the Amazon provider. The AWS connection is named
in the URL (`s3://aws_default@bucket/prefix`, Airflow's convention) or by `CREATOR_SYNC_DATA_CONN_ID`; with
neither, boto's default credential chain applies (an instance role). The URL of every file written below
the base carries the connection, so a path handed over XCom opens on any worker.

Local bases are plain `pathlib.Path` objects (what the sync has always used). Code that needs a local
directory for a remote one (the transform reads Parquet through pyarrow file paths) uses `staged_input` /
`staged_output`: download into a temporary directory, work there, upload the outputs.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from creator_sync import settings
from creator_sync.errors import CreatorSyncConfigError

DATA_URL_ENV = "CREATOR_SYNC_DATA_URL"
DATA_CONN_ID_ENV = "CREATOR_SYNC_DATA_CONN_ID"
LOCAL_PROTOCOLS = ("file", "local", "")

# A run directory: a local Path (file:// bases) or an airflow.sdk.ObjectStoragePath (object storage).
RunPath = Any


def default_data_url() -> str:
    return f"file://{Path(os.environ.get('AIRFLOW_HOME', '~/airflow')).expanduser() / 'data'}"


def data_url() -> str:
    return settings.current().data_url or default_data_url()


def data_base():
    """The data directory as an `ObjectStoragePath` (with the connection of `CREATOR_SYNC_DATA_CONN_ID` when
    the URL names none)."""
    from airflow.sdk import ObjectStoragePath

    base = ObjectStoragePath(data_url())
    conn_id = settings.current().data_conn_id
    if base.conn_id is None and conn_id and not is_local(base):
        base = ObjectStoragePath(data_url(), conn_id=conn_id)
    return base


def is_local(path: Any) -> bool:
    """True for a `pathlib.Path`, a plain local path string, or a `file://` ObjectStoragePath."""
    if isinstance(path, Path):
        return True
    if isinstance(path, str):
        return "://" not in path or path.startswith("file://")
    return getattr(path, "protocol", "") in LOCAL_PROTOCOLS


def local_path(path: Any) -> Path:
    """The `pathlib.Path` of a local path (Path, string or file:// ObjectStoragePath)."""
    if isinstance(path, Path):
        return path
    if isinstance(path, str):
        return Path(path.removeprefix("file://"))
    if not is_local(path):
        raise ValueError(f"{path} is not on the local filesystem")
    return Path(path.path)


def as_path(url: str) -> RunPath:
    """A path string from XCom (local, file:// or s3://conn@bucket/... URL) as a Path / ObjectStoragePath."""
    if is_local(url):
        return local_path(url)
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(url)


@functools.cache
def _checked_bucket(url: str) -> None:
    """Fail clearly, once per process and base, when the bucket of an object-storage base is missing (the
    filesystem layer would otherwise create it on a mkdir or fail deep inside a write)."""
    base = data_base()
    try:
        exists = base.fs.exists(base.bucket)
    except Exception as exc:  # credentials, endpoint: say which setting to look at, never the secret
        raise CreatorSyncConfigError(
            f"cannot reach the data directory {DATA_URL_ENV}={url}: {type(exc).__name__}: {exc}. Check "
            f"the AWS connection ({base.conn_id or 'none: boto default credentials'}) and its endpoint."
        ) from exc
    if not exists:
        raise CreatorSyncConfigError(
            f"{DATA_URL_ENV}={url}: bucket {base.bucket!r} does not exist or is not visible with connection "
            f"{base.conn_id or '(none: boto default credentials)'}. Create the bucket, or fix the URL / "
            f"{DATA_CONN_ID_ENV}."
        )


def data_root() -> RunPath:
    """The data directory: a Path for file:// bases, else an ObjectStoragePath whose bucket exists."""
    base = data_base()
    if is_local(base):
        return local_path(base)
    _checked_bucket(str(base))
    return base


def ensure_dir(path: RunPath) -> RunPath:
    """Create a local directory; object storage has no directories (a prefix exists once a file does)."""
    if is_local(path):
        local_path(path).mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def staged_input(directory: RunPath) -> Iterator[Path]:
    """A local directory holding the files of `directory`: itself when local, else a downloaded copy that
    is deleted afterwards."""
    if is_local(directory):
        yield local_path(directory)
        return
    tmp = Path(tempfile.mkdtemp(prefix="creator-sync-in-"))
    try:
        target = tmp / directory.name
        target.mkdir()
        prefix = str(directory.path).rstrip("/") + "/"
        for remote in directory.rglob("*"):
            if remote.is_file():
                local = target / str(remote.path).removeprefix(prefix)
                local.parent.mkdir(parents=True, exist_ok=True)
                directory.fs.get_file(remote.path, str(local))
        yield target
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def staged_output(directory: RunPath) -> Iterator[Path]:
    """A local directory whose files end up in `directory`: itself when local, else a temporary directory
    uploaded when the block succeeds (nothing is uploaded when it raises)."""
    if is_local(directory):
        path = local_path(directory)
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    tmp = Path(tempfile.mkdtemp(prefix="creator-sync-out-"))
    try:
        yield tmp
        upload_tree(tmp, directory)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def upload_tree(local: Path, directory: RunPath) -> int:
    """Copy every file under `local` to `directory` (same relative paths); returns the file count."""
    count = 0
    for path in sorted(local.rglob("*")):
        if path.is_file():
            remote = directory / path.relative_to(local).as_posix()
            directory.fs.put_file(str(path), remote.path)
            count += 1
    return count


def tree_size(path: RunPath) -> tuple[int, int]:
    """(files, bytes) under a directory."""
    files = size = 0
    if is_local(path):
        for item in local_path(path).rglob("*"):
            if item.is_file():
                files, size = files + 1, size + item.stat().st_size
        return files, size
    for item in path.rglob("*"):
        if item.is_file():
            files, size = files + 1, size + int(item.stat().get("size", 0) or 0)
    return files, size


class UnsafePathError(ValueError):
    """A path that would leave the directory it belongs in (``.``, ``..``, a separator, a symlink out)."""


def _is_plain_name(name: str) -> bool:
    return bool(name) and name not in (".", "..") and not any(c in name for c in "/\\\0")


def _remote_parts(path: Any) -> list[str]:
    return [part for part in str(path.path).split("/") if part]


def check_under(parent: RunPath, path: RunPath) -> None:
    """Raise UnsafePathError unless `path` lies strictly below `parent` (never `parent` itself).

    Local paths are compared after resolving symlinks and ``..``; object-storage keys must extend the
    parent's key by whole segments, none of them ``.`` or ``..``."""
    if is_local(parent) != is_local(path):
        raise UnsafePathError(f"{path} and {parent} are not on the same storage")
    if is_local(parent):
        root, target = local_path(parent).resolve(), local_path(path).resolve()
        if root not in target.parents:
            raise UnsafePathError(f"{path} is not inside {parent}")
        return
    root_parts, parts = _remote_parts(parent), _remote_parts(path)
    inside = len(parts) > len(root_parts) and parts[: len(root_parts)] == root_parts
    if not inside or any(part in (".", "..") for part in parts) or path.bucket != parent.bucket:
        raise UnsafePathError(f"{path} is not inside {parent}")


def child(parent: RunPath, name: str) -> RunPath:
    """``parent / name`` for a single, plain directory or file name (UnsafePathError otherwise)."""
    if not isinstance(name, str) or not _is_plain_name(name):
        raise UnsafePathError(f"{name!r} is not a plain file or directory name")
    path = parent / name
    check_under(parent, path)
    return path


def remove_tree(path: RunPath, *, parent: RunPath) -> None:
    """Delete the directory `path`, which must lie inside `parent` (checked before anything is deleted)."""
    check_under(parent, path)
    if is_local(path):
        shutil.rmtree(local_path(path), ignore_errors=True)
    else:
        path.fs.rm(path.path, recursive=True)
