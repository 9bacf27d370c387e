"""Where creator-sync reads its configuration files: the one module that knows.

The pools file (pool names, slots, vendor rate limits) and the Insider mapping ship inside the package
(``creator_sync/resources/``). ``$CREATOR_SYNC_CONFIG_DIR`` points at another directory holding files of the
same names (a deployment that raises a limit, the benchmarks' raised InsightIQ rate).
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

CONFIG_DIR_ENV = "CREATOR_SYNC_CONFIG_DIR"
POOLS_FILE_NAME = "pools.json"
MAPPING_FILE_NAME = "insider_mapping.yaml"


def packaged_config_dir() -> Path:
    """The files shipped with the package."""
    return Path(str(resources.files("creator_sync") / "resources"))


def config_dir() -> Path:
    env = os.environ.get(CONFIG_DIR_ENV)
    return Path(env) if env else packaged_config_dir()


def pools_file() -> Path:
    return config_dir() / POOLS_FILE_NAME


def mapping_file() -> Path:
    return config_dir() / MAPPING_FILE_NAME
