"""Every setting of creator-sync: its environment variable, type, default and meaning. The one module that
reads ``CREATOR_SYNC_*`` from the environment; the others ask it (``settings.current()``).

Each field ``name`` is the environment variable ``CREATOR_SYNC_<NAME>``. An empty value counts as unset
(compose passes every setting, empty where .env leaves it out). A value of the wrong type or outside its
range raises CreatorSyncConfigError naming the variable, the value and what is allowed: DAG files read the
settings when they are parsed (creator_sync.dag_defaults), so a bad value shows as an import error of every
DAG.

docs/settings.md is generated from this module (``python -m creator_sync.settings > docs/settings.md``; a
test compares), and docker-compose.yaml passes every setting to the Airflow containers (a test compares).

The pools file (pool names, slots, vendor rate limits) and the Insider mapping ship inside the package
(``creator_sync/resources/``); ``CREATOR_SYNC_CONFIG_DIR`` points at a directory of files of the same names.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

PREFIX = "CREATOR_SYNC_"
POOLS_FILE_NAME = "pools.json"
MAPPING_FILE_NAME = "insider_mapping.yaml"
OFFBOARD_RULES = ("all_accounts_disconnected", "user_deleted", "operator_request")
# never repeated in an error message
SECRET_FIELDS = frozenset({"insider_callback_token", "state_url"})
OffboardRule = Literal["all_accounts_disconnected", "user_deleted", "operator_request"]


class Settings(BaseSettings):
    """creator-sync's settings: the environment of every Airflow component that runs its code."""

    model_config = SettingsConfigDict(
        env_prefix=PREFIX, env_ignore_empty=True, str_strip_whitespace=True, extra="ignore", frozen=True
    )

    # --- where things are -----------------------------------------------------------------------------
    config_dir: Path | None = Field(
        None,
        description="Directory of a pools.json and an insider_mapping.yaml that replace the packaged ones "
        "(unset: the files in creator_sync/resources/).",
    )
    data_url: str | None = Field(
        None,
        description="The data directory of run files: file:///path or s3://bucket/prefix (unset: "
        "file://$AIRFLOW_HOME/data).",
    )
    data_conn_id: str | None = Field(
        None, description="The AWS connection of an s3:// data directory (unset: boto's default credentials)."
    )
    state_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the state DB (ledger, dead letters, run reports), e.g. "
        "postgresql://user:password@host/db (unset: SQLite state.db in a file:// data directory).",
    )
    # --- schedule and runs ----------------------------------------------------------------------------
    schedule: str = Field("0 * * * *", description="creator_sync's schedule: a cron expression in UTC.")
    fetch_mode: Literal["incremental", "full"] = Field(
        "incremental",
        description="How scheduled runs read InsightIQ: incremental (the stored directory snapshot and a "
        "rotating sweep) or full (everything, every run).",
    )
    lookback_hours: int = Field(
        0,
        ge=0,
        description="Late data: a run also sends unsent events from this many hours before its interval.",
    )
    engagement_window_days: int = Field(
        30,
        ge=1,
        description="Days of content the per-platform engagement attributes (averages per post, posts per "
        "week, engagement rate) cover; a run whose contents cover fewer days leaves them out.",
    )
    backfill_chunk_days: int = Field(31, ge=0, description="Days one backfill read of InsightIQ covers.")
    backfill_cache_hours: int = Field(
        12, ge=0, description="Hours a backfill read is reused by later backfill runs (0: no backfill cache)."
    )
    history_from_date: date = Field(
        date(2020, 1, 1),
        json_schema_extra={"allowed": "a date YYYY-MM-DD"},
        description="creator_sync_history: a newly connected account's past is fetched (fetch-historic) and "
        "sent from this day (00:00 UTC) on.",
    )
    history_window_days: int = Field(
        366, ge=1, description="creator_sync_history: days of an account's past one read of each list covers."
    )
    history_max_accounts_per_run: int = Field(
        100,
        ge=0,
        description="creator_sync_history: accounts one run requests and sends the past of, oldest first (0: "
        "the history path does nothing).",
    )
    history_job_wait_s: float = Field(
        600,
        ge=0,
        description="creator_sync_history: seconds between requesting an account's fetch-historic jobs and "
        "reading its past.",
    )
    history_reopen_late: bool = Field(
        True,
        description="creator_sync runs that read an item of a newly connected account's past the history "
        "path has not sent (InsightIQ listed it after the history read) put the account's history back to "
        "owed, so creator_sync_history sends it (false: such items are not sent).",
    )
    task_timeout_minutes: float = Field(
        180, gt=0, description="Every task is stopped (and retried) after this many minutes."
    )
    retry_delay_s: float = Field(
        30, ge=0, description="First delay of a task's retries (exponential backoff)."
    )
    max_rejection_rate: float = Field(
        0.2,
        ge=0,
        le=1,
        json_schema_extra={"allowed": "a fraction between 0 and 1 (e.g. 0.2) or a percentage (e.g. 20%)"},
        description="The report task fails when more than this share of the fetched creators was rejected: "
        "a fraction or a percentage (20%); 1 turns the check off.",
    )
    progress_interval_s: float = Field(
        10, ge=0, description="Seconds between progress lines in long task logs (0: every item)."
    )
    offboard_rules: Annotated[tuple[OffboardRule, ...], NoDecode] = Field(
        OFFBOARD_RULES,
        description="Comma-separated offboarding rules that apply (unset: all of "
        + ", ".join(OFFBOARD_RULES)
        + ").",
    )
    # --- vendor traffic -------------------------------------------------------------------------------
    rate_limit_backend: str = Field(
        "local",
        description="Where the vendor rate budgets live: local (per process, each task its pool slots' "
        "share), file:///dir (one SQLite file per machine) or redis://host:port/db (every worker).",
    )
    rate_limit_margin: float = Field(
        0.03,
        ge=0,
        lt=1,
        description="Safety margin as a fraction of each rate window (0.03 of a 1 s window = 30 ms), against "
        "send-to-arrival jitter (docs/production.md, section 4).",
    )
    rate_limit_burst: float = Field(
        1.1,
        ge=1,
        description="Pacing ticks a client may lend from ticks nobody was ready for (1: strictly even "
        "pacing; 1.1: a late wake-up of up to a tenth of a tick is caught up, sends stay 0.9 ticks apart).",
    )
    http_timeout_s: float | None = Field(
        None, gt=0, description="Read/write timeout of vendor requests in seconds (unset: 30; connect <= 10)."
    )
    upsert_max_users: int = Field(
        0, ge=0, description="Users per Insider upsert request (0: Insider's maximum of 1,000)."
    )
    claim_lease_s: float = Field(
        180,
        gt=0,
        description="Seconds an attempt's send claims stay live without renewal (renewed before every "
        "request): more than the longest wait between requests (a Retry-After, at most 120, plus the read "
        "timeout).",
    )
    claim_wait_s: float = Field(
        3600,
        ge=0,
        description="Seconds a send waits for users another live run holds (it sends them once that run "
        "releases them, so the other run's data never replaces this run's); past it the task fails and its "
        "retry resumes from the ledger.",
    )
    lost_answer_settle_s: float | None = Field(
        None,
        ge=0,
        description="Seconds to wait before asking Insider about a batch whose answer was lost (unset: the "
        "client's read timeout, at most 60).",
    )
    probe_rounds: int = Field(
        3,
        ge=1,
        description="Profile API rounds that look for the events of a batch whose answer was lost; what "
        "is not found after them is sent again.",
    )
    probe_backoff_s: float = Field(
        5.0,
        ge=0,
        description="Seconds between those rounds, doubling each round (Insider's ingestion lag).",
    )
    # --- webhooks and alerts --------------------------------------------------------------------------
    public_base_url: str | None = Field(
        None,
        description="Public https URL of this Airflow's api-server, for the InsightIQ webhooks and Insider's "
        "error callbacks (unset: neither is registered).",
    )
    insider_callback_token: SecretStr | None = Field(
        None,
        description="Token of Insider's error-callback URL (unset: derived from the Insider connection's "
        "request token).",
    )
    webhook_debounce_s: float = Field(
        30, ge=0, description="Seconds webhook events for one creator are gathered into one targeted run."
    )
    max_accounts_per_run: int = Field(
        500,
        ge=1,
        description="Accounts one targeted run may name: larger webhook bursts become several runs, a run "
        "triggered with more account_ids fails at once.",
    )
    callback_sent_within_hours: int = Field(
        72,
        ge=1,
        description="Insider's error callback is believed only for users a run sent within this many hours.",
    )
    alert_conn_id: str | None = Field(
        None,
        description="Connection failure and deadline alerts go to: smtp, or slackwebhook/http (unset: no "
        "alerts).",
    )
    deadline_minutes: float | None = Field(
        None,
        gt=0,
        description="A scheduled run still going this many minutes after it was queued sends a deadline "
        "alert (unset: one schedule interval).",
    )
    # --- retention (creator_sync_maintenance) ---------------------------------------------------------
    retain_run_files_days: int = Field(14, ge=1, description="Days run files and per-run details are kept.")
    retain_ledger_days: int = Field(
        90,
        ge=1,
        description="Days acknowledged events stay in the ledger: longer than the oldest interval you will "
        "backfill; at least 9 with fetch_mode incremental (creator_sync.retention).",
    )
    retain_dead_letters_days: int = Field(90, ge=1, description="Days dead letters are kept.")

    @field_validator("fetch_mode", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("max_rejection_rate", mode="before")
    @classmethod
    def _percent(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().endswith("%"):
            try:
                return float(value.strip().removesuffix("%")) / 100
            except ValueError:
                return value
        return value

    @field_validator("offboard_rules", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            rules = tuple(dict.fromkeys(r.strip().lower() for r in value.split(",") if r.strip()))
            return rules or OFFBOARD_RULES
        return value

    @classmethod
    def env_name(cls, field: str) -> str:
        return f"{PREFIX}{field.upper()}"


class _FromMapping(Settings):
    """Settings from the given values only (``load(environ=...)``), not from os.environ."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        *args: Any,
        **kw: Any,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def _explain(error: ValidationError, environ: Mapping[str, str]) -> Exception:
    from creator_sync.errors import CreatorSyncConfigError

    problems = []
    for item in error.errors():
        name = str(item["loc"][0]) if item["loc"] else "?"
        env = Settings.env_name(name)
        field = Settings.model_fields.get(name)
        shown = "***" if name in SECRET_FIELDS else repr(environ.get(env, ""))
        problems.append(
            f"{env}={shown} is invalid: allowed is {allowed(name) if field else '?'} ({item['msg']}). {env}: "
            f"{field.description if field else ''} Fix or unset it where Airflow's containers get their "
            f"environment (.env / docker-compose.yaml, your Helm values or Astro variables)."
        )
    return CreatorSyncConfigError("\n".join(problems))


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings of ``environ`` (default: the process environment), validated."""
    source = os.environ if environ is None else environ
    return _load(tuple(sorted((k, v) for k, v in source.items() if k.startswith(PREFIX))))


@functools.lru_cache(maxsize=16)
def _load(variables: tuple[tuple[str, str], ...]) -> Settings:
    """Settings of these CREATOR_SYNC_* variables; cached, as building them costs milliseconds and the
    environment changes rarely (a test's monkeypatch gives another key)."""
    environ = dict(variables)
    values = {
        name: value.strip()
        for name in Settings.model_fields
        if (value := environ.get(Settings.env_name(name))) is not None and value.strip()
    }
    try:
        return _FromMapping(**values)
    except ValidationError as error:
        raise _explain(error, environ) from None


def default(name: str) -> Any:
    """The default of a setting (for modules that name it, e.g. in a message)."""
    return Settings.model_fields[name].default


def current() -> Settings:
    """The settings of the process environment as it is now (tests change it between calls)."""
    return load()


# --- configuration files -----------------------------------------------------------------------------------
CONFIG_DIR_ENV = Settings.env_name("config_dir")


def packaged_config_dir() -> Path:
    """The files shipped with the package."""
    return Path(str(resources.files("creator_sync") / "resources"))


def config_dir() -> Path:
    return current().config_dir or packaged_config_dir()


def pools_file() -> Path:
    return config_dir() / POOLS_FILE_NAME


def mapping_file() -> Path:
    return config_dir() / MAPPING_FILE_NAME


# --- docs/settings.md ---------------------------------------------------------------------------------------
def _type_name(annotation: Any) -> str:
    if "Literal" in str(annotation):
        return "list" if "tuple" in str(annotation) else "choice"
    text = str(annotation).replace("typing.", "").replace("pathlib.", "").replace("pydantic.types.", "")
    text = text.replace("datetime.", "")
    text = text.replace("<class '", "").replace("'>", "").replace("Annotated[", "").replace(", NoDecode]", "")
    return text.replace("SecretStr", "secret").replace(" | None", "").replace("Optional[", "")


def allowed(name: str) -> str:
    """What a field accepts, in words (error messages and docs/settings.md)."""
    field = Settings.model_fields[name]
    if isinstance(field.json_schema_extra, dict) and "allowed" in field.json_schema_extra:
        return str(field.json_schema_extra["allowed"])
    annotation = str(field.annotation)
    if "Literal" in annotation:
        choices = annotation.split("Literal[", 1)[1].split("]", 1)[0].replace("'", "")
        return ("a comma-separated subset of " if "tuple" in annotation else "one of ") + choices
    kind = {"int": "a whole number", "float": "a number"}.get(_type_name(field.annotation), "text")
    bounds = [
        f"{sign} {getattr(meta, attr)}"
        for meta in field.metadata
        for attr, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))
        if getattr(meta, attr, None) is not None
    ]
    return " ".join([kind, " and ".join(bounds)]).strip()


def _default(name: str) -> str:
    default = Settings.model_fields[name].default
    if default is None:
        return "unset"
    if isinstance(default, tuple):
        return ",".join(default)
    return str(default)


def markdown() -> str:
    lines = [
        "# Settings",
        "",
        "<!-- Generated from include/creator_sync/settings.py by",
        "`python -m creator_sync.settings > docs/settings.md`; tests/test_settings.py compares.",
        "Edit the module, not this file. -->",
        "",
        "Environment variables of the Airflow containers (scheduler, dag-processor, workers, triggerer,",
        "api-server). An empty value counts as unset. A value outside what is allowed fails every DAG at",
        "parse time with an import error naming the variable. docker-compose.yaml passes each of them from",
        "`.env`.",
        "",
        "| Variable | Type | Default | Allowed | Meaning |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, field in Settings.model_fields.items():
        lines.append(
            f"| `{Settings.env_name(name)}` | {_type_name(field.annotation)} | `{_default(name)}` | "
            f"{allowed(name)} | {field.description} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
