"""docs/mapping.md, generated from ``insider_mapping.yaml``: ``python -m creator_sync.pipeline.mapping_doc >
docs/mapping.md`` (tests/pipeline/test_mapping_doc.py compares).

The tables come from the validated mapping, the transforms and reducers from their registries, and the
example user from a transform run on the sample creator below (two platforms, audience, a month of posts).
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from creator_sync.files import write_records_parquet
from creator_sync.pipeline import engagement, income
from creator_sync.pipeline.mapping import Mapping, load_mapping
from creator_sync.pipeline.mapping_schema import INSIDER_DEFAULT_ATTRIBUTES
from creator_sync.pipeline.reducers import REDUCERS, TRANSFORMS
from creator_sync.settings import Settings
from creator_sync.store.income import PAYOUT, TRANSACTION, IncomeItem, totals_of

SAMPLE_END = datetime(2024, 5, 2, tzinfo=UTC)
INTRO = """# InsightIQ -> Insider One mapping

<!-- Generated from include/creator_sync/resources/insider_mapping.yaml by
`python -m creator_sync.pipeline.mapping_doc > docs/mapping.md`; tests/pipeline/test_mapping_doc.py
compares. Edit the mapping (or the generator), not this file. -->

The executable mapping is `include/creator_sync/resources/insider_mapping.yaml`, validated when it loads
(`include/creator_sync/pipeline/mapping_schema.py`: a bad file fails with the file, the line, what is wrong
and how to fix it). Source columns are the fetch step's flattened names (`pandas.json_normalize(sep=".")`,
lists/dicts as JSON text, see `docs/development.md`). One engine computes every identifier and attribute
(`include/creator_sync/pipeline/attributes.py`): the source column, its transforms row by row, a fallback,
a `where` filter, then a reducer over the creator's rows. An attribute from a column the fetch already
writes is a mapping change, no code. Events: `include/creator_sync/pipeline/events.py`.

## One Insider user per creator

One InsightIQ user (`users.id`) is one Insider user, however many accounts the creator connected. Their
profiles are merged: each personal field is the newest non-empty value (by `profiles.updated_at`); platform
values are kept per platform as `custom.{platform}_{name}` (summed when a creator has two accounts on one
platform). Platform = `work_platform.name` normalised the way Insider names attributes (lowercase, runs of
other characters -> `_`): `YouTube` -> `youtube_follower_count`, `X (Twitter)` -> `x_twitter_follower_count`.
Fetched creators = distinct user ids seen in `users`, `profiles` and `accounts`. A column the fetched files
lack gives no value: the key is left out (Insider keeps what it has).

Array attributes (`array`, `number_array`) are the whole current list. Insider appends array values unless
a request says otherwise (`"not_append": true` or `"append": false`, `append` winning when both are there);
a user that carries an array attribute is sent with both, `"append": false, "not_append": true`, so the list
replaces the stored one under either reading.
"""

CONSENT = """
## Consent and opt-in attributes

`email_optin`, `gdpr_optin`, `sms_optin`, `whatsapp_optin` are never sent: InsightIQ does not know consent
(the schema refuses them). An attribute without a `source` is opt-in: declared, documented, off. It is sent
(and its column read) only once the mapping names a source for it.
"""

REASONS = """
## Rejection reason codes (stable)

| Code | Where | Meaning |
|---|---|---|
| `missing_identifier` | validation | no identifier at all |
| `invalid_uuid` | validation | uuid present but not a string, empty, longer than 255 characters (the state store's user keys) or holding a NUL |
| `malformed_email` | validation | email present, does not match `^.+@.+\\..+$` |
| `non_e164_phone` | validation | phone cannot become `^\\+[1-9]\\d{6,14}$` |
| `no_usable_identifier` | validation (rule) | no valid email and no valid phone |
| `invalid_event_timestamp` | validation | an event timestamp is not RFC 3339 |
| `purchase_missing_params` | validation | purchase event without its required params (`event_group_id`, `currency`, `quantity`, `unit_sale_price`) |
| `cart_page_view_missing_params` | validation | cart_page_view event without its required params (`event_group_id`, `currency`, `unit_sale_price`) |
| `user_too_large` | validation / hook | one user over the 5,000,000-byte request limit |
| `vendor_rejected` | sender | Insider answered 200 but listed the user under `fail` (messages kept) |
| `unification_error` | webhook receiver | Insider called the run's `error_callback_endpoint` for the user (the report counts them for the run that sent the user) |
| `malformed_source_record` | transform / sender | an InsightIQ record without its id (`id`, `user.id`), an event record whose time is there but not ISO 8601 (`2024-05-01 10:00 UTC`: no run's interval holds it; kept once a run, by every run that reads it: hourly, backfill, history), or a users file line that is not a user object; not replayable |
| `unsettled_lost_answer` | sender | an upsert's answer was lost and the Profile API could not tell whether the user's events arrived: held for an operator |
| `clear_failed` | clear (after the upsert) | a Delete User Attribute request for a lapsed platform's attributes failed or Insider listed the user under `fail`; payload: the request element; not replayable (the next run's clears send it again) |
| `invalid_income_item` | transform | an InsightIQ income transaction or payout without a usable id, amount, ISO 4217 currency or time: kept out of the income attributes; payload: the record; not replayable |

Rejected users are dead-lettered with reason, detail and the payload, and never cost an API call.
"""  # noqa: E501


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _rule(spec) -> str:
    parts = [f"`{t}`" for t in spec.transform]
    fallback = getattr(spec, "fallback", None)
    text = ", ".join(parts)
    if fallback is not None:
        empty = " and ".join(f"`{c}`" for c in fallback.when_empty)
        fb = ", ".join(f"`{t}`" for t in fallback.transform)
        text += f"; where missing{f' and {empty} empty' if empty else ''}: `{fallback.source}` {fb}"
    if getattr(spec, "region_from", None):
        text += f"; region `{spec.region_from}`"
    return text or "as given"


def _source(spec) -> str:
    if spec.source is None:
        return "off (opt-in: name a source)"
    where = "".join(f" where `{c}` in {', '.join(v)}" for c, v in (getattr(spec, "where", {}) or {}).items())
    return f"`{spec.source}`{where}"


def _identifiers(m: Mapping) -> list[str]:
    lines = [
        "## Identifiers (`identifiers`)",
        "",
        "| Insider | Source | Rule | Reducer | Notes |",
        "|---|---|---|---|---|",
    ]
    for name, spec in m.identifiers.items():
        reduce = f"`{spec.reduce}`" if name != "uuid" else "-"  # uuid: every user id the fetch saw
        lines.append(f"| `{name}` | {_source(spec)} | {_rule(spec)} | {reduce} | {_cell(spec.doc)} |")
    rule = "on" if m.require_contact_identifier else "off"
    lines += [
        "",
        f"Business rule (`rules.require_contact_identifier`, {rule}): a creator",
        "needs a valid email or phone, else `no_usable_identifier`. An invalid email is never dropped",
        "silently to send the rest. One user must fit in `rules.max_user_bytes` "
        f"({m.max_user_bytes:,} bytes) with the request envelope.",
    ]
    return lines


def _clear_cell(spec) -> str:
    """The Clear column: yes / no for per-platform attributes; for one over all platforms `no connected
    account` (with how, and `connected only` when it counts only connected accounts), or `-`."""
    if REDUCERS[spec.reduce].per_platform:
        return "yes" if spec.clears else "no"
    cell = f"no connected account: {spec.clear_as}" if spec.clears_whole else "-"
    return f"{cell}; connected only" if spec.connected_only else cell


def _attribute_rows(m: Mapping, custom: bool) -> list[str]:
    rows = []
    for name, spec in m.attributes.items():
        if name.startswith("custom.") != custom:
            continue
        short = name.removeprefix("custom.")
        shown = f"{{platform}}_{short}" if REDUCERS[spec.reduce].per_platform else short
        key = spec.key if isinstance(spec.key, str) else " + ".join(spec.key or [])
        extra = f" {key}, top {spec.top}" if spec.key else ""
        cleared = _clear_cell(spec)
        rows.append(
            f"| `{shown}` | {spec.type} | {_source(spec)} | {_rule(spec)} | `{spec.reduce}`{extra} | "
            f"{cleared} | {_cell(spec.doc)} |"
        )
    return rows


def _attributes(m: Mapping) -> list[str]:
    head = [
        "| Insider | Type | Source | Transforms | Reducer | Clear | Notes |",
        "|---|---|---|---|---|---|---|",
    ]
    defaults = ", ".join(f"`{n}` ({t})" for n, t in INSIDER_DEFAULT_ATTRIBUTES.items())
    lines = [
        "## Default attributes (`attributes`)",
        "",
        f"Insider's own attributes and types: {defaults}.",
        "",
    ]
    lines += head + _attribute_rows(m, custom=False)
    language = f"`{m.language_format}`"
    lines += [
        "",
        f"`language` (format {language}): `language` sends the ISO 639-1 code InsightIQ gives (`en`);",
        "`locale` sends `<language>_<COUNTRY>` from the same profile's country (`en_US`, Insider's sample",
        "form; the language alone when the profile has no valid country).",
        "",
        "## Custom attributes (`attributes.custom`)",
        "",
        "Clear (`clear`, per-platform attributes: on unless `clear: false`): when none of a creator's",
        "accounts on a platform is CONNECTED any more, the run leaves the platform's attribute out of the",
        "upsert and removes it at Insider (Delete User Attribute, after the upsert, in the upsert's rate",
        "budget; creator_sync.pipeline.clearing and creator_sync.pipeline.clear). `no` keeps the last value.",
        "A custom attribute over all platforms with `clear: true` (`no connected account`) is handled the",
        "same way when none of the creator's accounts is CONNECTED any more (every account the run knows",
        "has a known other status: an account without a status clears nothing). `clear_as` says how:",
        "`delete` (default) removes it through Delete User Attribute, the documented way to empty an",
        "attribute; `empty_list` (arrays only) sends `[]` with `not_append` in the upsert instead. Insider's",
        "docs neither allow nor refuse an empty array, so `empty_list` is for an account whose Insider is",
        "known to take it. `connected only` (`connected_only: true`): the value is computed from the rows",
        "of CONNECTED accounts only (profiles by their account; an account of unknown status counts), so",
        "a total never includes a disconnected account.",
        "",
    ]
    return lines + head + _attribute_rows(m, custom=True)


def _content_attributes(m: Mapping) -> list[str]:
    days = Settings.model_fields["engagement_window_days"].default
    lines = [
        "## Attributes from contents (`platform_attributes`)",
        "",
        "| Insider | Type | From |",
        "|---|---|---|",
    ]
    for name, cols in m.content_metrics.items():
        summed = " + ".join(f"`{c}`" for c in cols)
        lines.append(
            f"| `{{platform}}_{name}` | integer | {summed} of the items published inside the run's data "
            "interval |"
        )
    for name, (kind, doc) in engagement.ATTRIBUTES.items():
        lines.append(f"| `{{platform}}_{name}` | {kind} | {doc} |")
    used = ", ".join(f"{k} = `{v}`" for k, v in m.engagement_columns.items())
    cleared = "cleared" if m.clear_contents else "kept (`clear: false`)"
    lines += [
        "",
        f"For a platform none of whose accounts is CONNECTED any more, these are {cleared} at Insider",
        "(`platform_attributes.clear`).",
        "",
        f"The engagement window is `CREATOR_SYNC_ENGAGEMENT_WINDOW_DAYS` ({days} days by default) before the",
        f"end of the run's data interval; its columns: {used}. A run reads the contents of its own read",
        "window (an hourly run its hours and the look-back, the weekly contents sweep a week, a backfill",
        "its days, a webhook-triggered targeted run the whole engagement window of its accounts). These",
        "attributes are sent only by a run whose contents cover the whole engagement window (a targeted",
        "run, a backfill over it, or a look-back of at least the window): a value never describes a",
        "shorter span than its name says, and an hourly run's new post does not re-send every posting",
        "creator's attributes. A run that read less leaves them out; Insider keeps the last full-window",
        "values. Every InsightIQ webhook of an account (`CONTENTS.UPDATED` when its items' counts move,",
        "`CONTENTS.ADDED`, `PROFILES.UPDATED`, ...) starts a targeted run that re-reads the account's",
        "contents over the window and sends the recomputed values; its events stay those of the run's",
        "event window, so an item read again is not sent again. A targeted run sends a creator's values",
        "for a platform only when it read all of the creator's connected accounts there (a value over part",
        "of them would replace the whole). An account without webhooks is refreshed by a backfill (or a",
        "run with a look-back) over the window.",
    ]
    return lines


def _income_attributes(m: Mapping) -> list[str]:
    """The `income` section: the attributes, how they are kept correct, the safe readings."""
    if m.income is None:
        return ["## Income attributes (`income`)", "", "None: the mapping names no income attribute."]
    lines = [
        "## Income attributes (`income`)",
        "",
        "| Insider | Type | From |",
        "|---|---|---|",
    ]
    for name, spec in m.income.attributes.items():
        kind, per_currency, what = income.ATTRIBUTES[name]
        shown = f"`{name}_{{currency}}`" if per_currency else f"`{name}`"
        lines.append(f"| {shown} | {kind} | {_cell(spec.doc or what)} |")
    return lines + _income_reading(m) + _income_figures()


def _income_reading(m: Mapping) -> list[str]:
    """What the income figures count and where their items come from."""
    statuses = ", ".join(f"`{s}`" for s in m.income.statuses("transaction"))
    paid = ", ".join(f"`{s}`" for s in m.income.statuses("payout"))
    return [
        "",
        "`{currency}` is the ISO 4217 code in lower case (`earnings_30d_usd`, `earnings_lifetime_eur`): one",
        "attribute per currency, because Insider's attributes are flat (the Upsert API types String, Number,",
        "Boolean, Date/Time and arrays; no object) and amounts of two currencies are never added. The",
        "Upsert API docs do not say whether a number attribute takes fractions; the amounts are sent as",
        "Numbers with up to 6 decimals, as InsightIQ gives them (the `income_received` event sends them the",
        "same way). Amounts are summed as integer micro-units: exact, whatever the order.",
        "",
        f"Transactions count when their status is {statuses}, or when they carry no status (InsightIQ's",
        f"docs name no transaction status; the sandbox's are all COMPLETED); payouts when it is {paid}",
        "(as `payout_received`). Items of other statuses are kept with their status, so a later read that",
        "finds them counted counts them. An item without a usable id, amount, ISO 4217 currency or time is",
        "dead-lettered (`invalid_income_item`) and stays out of the figures; one with its id and a status",
        "that does not count (a payout read again `FAILED` without an amount) still makes the item it",
        "replaces stop counting.",
        "",
        "**Kept in state, counted once.** A run reads only some of a creator's income (an hourly run its",
        "interval, the weekly income sweep eight days, a targeted run or a backfill its span, the history",
        "path the past in windows; a retried task the same rows again). Every transaction and payout a run",
        "reads is kept in the state store once per (creator, kind, InsightIQ id) - read again, its row is",
        "replaced with what InsightIQ says now - and the figures are computed from all the kept items",
        "(`creator_sync.store.income`), never added to a counter. No extra InsightIQ request: the items come",
        "from the transactions and payouts the run reads for the `income_received` / `payout_received`",
        "events (the schema refuses an income attribute without an event over its source).",
    ]


def _income_figures() -> list[str]:
    """How the 30-day window, the last payout and vanished figures behave, with an example."""
    return [
        "",
        f"**The {income.WINDOW_DAYS}-day window** ends at the run's data interval end (or at a later end an",
        "earlier run computed the creator's figures for: a backfill does not move them back) and holds the",
        f"transactions at or after end - {income.WINDOW_DAYS} days (a transaction exactly",
        f"{income.WINDOW_DAYS} days old counts). It falls with time alone: each creator's totals keep the",
        "moment their oldest transaction in the window leaves it, and every run rechecks the creators it",
        "writes past that moment, so a creator without new income gets a correct figure from the next",
        "hourly run (a currency with nothing recent is sent as 0). Unchanged figures change no attribute",
        "hash, so they cost no request (the upsert skips unchanged creators).",
        "",
        "**The last payout** is the newest kept payout (by `payout_at`, then id): an older one read late",
        "(the sweep, a backfill, the history path) never replaces it, because the newer one is kept too.",
        "Two runs at once (an hourly and a targeted run): on PostgreSQL the income step takes one advisory",
        "lock per write transaction, so the run that keeps its items second recomputes from the first one's",
        "committed items and the kept totals hold both (on SQLite the write transaction is the only writer",
        "anyway). Each run sends the figures it computed, and the claims let one of them send a creator at a",
        "time; a run that computed before the other's items were kept can still send its older figures last,",
        "and the next run that writes the creator sends the kept, current ones (its attribute hash differs",
        "from the acknowledged one).",
        "",
        "**A figure that is gone is sent as 0.** When no counted transaction of a currency the creator had",
        "is left (an item corrected to another currency, its only transaction `REVERSED`), that currency's",
        "`earnings_lifetime_*` and `earnings_30d_*` are sent as 0: an upsert that leaves an attribute out",
        "does not change it at Insider. A last payout that is gone (the creator's only `PAID` payout read",
        "again as `FAILED`) has no value to send: the upsert leaves the `last_payout_*` attributes out and",
        "they join the creator's clears.jsonl line (Delete User Attribute, in the upsert's rate budget).",
        "Every run that writes the creator lists them again until a counted payout comes back, so a delete",
        "that did not land is sent again. The clear pass re-reads the stored totals first and deletes them",
        "only while the last payout is still gone: a newer counted payout a run beside it sent stays.",
        "",
        "A dry run computes the figures with its items and keeps none of them.",
        "",
        "Example: the income attributes of a creator with three USD and one EUR transaction and two PAID",
        "payouts (`income_example`):",
        "",
        "```json",
        json.dumps(income_example(), ensure_ascii=False, indent=2),
        "```",
    ]


def income_example() -> dict:
    """The income attributes of a sample creator, as of 2024-06-01 (the totals computed the way the state
    store computes them: creator_sync.store.income.totals_of)."""
    end = income.epoch_us(datetime(2024, 6, 1, tzinfo=UTC))
    day = 86_400 * income.MICROS

    def item(kind, n, days, amount, currency):
        return IncomeItem("u1", kind, f"{kind[0]}{n}", "a1", round(amount * income.MICROS), currency,
                          end - days * day, "COMPLETED" if kind == TRANSACTION else "PAID", True)  # fmt: skip

    items = [
        item(TRANSACTION, 1, 3, 120.5, "USD"),
        item(TRANSACTION, 2, 12, 80.0, "USD"),
        item(TRANSACTION, 3, 45, 300.0, "USD"),
        item(TRANSACTION, 4, 40, 55.25, "EUR"),
        item(PAYOUT, 1, 20, 380.0, "USD"),
        item(PAYOUT, 2, 50, 150.0, "USD"),
    ]
    return income.attribute_values(totals_of(items, end, income.window_us()))


def _events(m: Mapping) -> list[str]:
    lines = [
        "## Events (`events`)",
        "",
        "Only rows whose timestamp falls in the run's data interval `[start, end)`, or in",
        "`[start - look-back, end)` with a look-back. Timestamps are RFC 3339 in UTC with whole seconds and",
        "`Z`. Events are appended by Insider, so each one is sent once: the ledger key is",
        "`sha256(uuid, event_name, timestamp, key params)` (changed like counts do not make a new event).",
        "`where` keeps only rows whose column holds one of the listed values; `skip_hook: true` sends the",
        "event with `skip_hook` (history that must not trigger journeys).",
        "",
        "| Event | Source | Timestamp | Key params | `event_params` | `event_params.custom` "
        "| where / skip_hook |",
        "|---|---|---|---|---|---|---|",
    ]
    for spec in m.events.values():
        params = ", ".join(f"`{p.name}` = `{p.column}` ({p.type})" for p in spec.params)
        custom = ", ".join(f"`{p.name}` = `{p.column}` ({p.type})" for p in spec.custom)
        where = "; ".join(f"`{c}` in {', '.join(v)}" for c, v in spec.where) or "-"
        where += ", skip_hook" if spec.skip_hook else ""
        keys = ", ".join(f"`{k}`" for k in spec.key_params)
        lines.append(
            f"| `{spec.name}` | `{spec.source}` | `{spec.timestamp}` | {keys} | {params} | {custom} "
            f"| {where} |"
        )
    return lines


def _registries() -> list[str]:
    lines = ["## Transforms and reducers", "", "| Transform | Does |", "|---|---|"]
    lines += [f"| `{name}` | {t.doc} |" for name, t in TRANSFORMS.items()]
    lines += ["", "| Reducer | Gives | Types |", "|---|---|---|"]
    lines += [f"| `{name}` | {r.doc} | {', '.join(r.types)} |" for name, r in REDUCERS.items()]
    return lines


# the sample creator's accounts: TikTok's lapsed session shows clearing (its attributes are cleared)
SAMPLE_ACCOUNTS = (
    ("acc-ig", "Instagram", "CONNECTED"),
    ("acc-yt", "YouTube", "CONNECTED"),
    ("acc-tt", "TikTok", "SESSION_EXPIRED"),
)


def sample_inputs(root: Path) -> dict[str, list[Path]]:
    """One creator on Instagram and YouTube (and TikTok, lapsed): profiles, accounts, audience and a month
    of posts."""
    email = [{"type": "WORK", "email_id": "maya@example.com"}]

    def prof(account, platform, updated, followers, **more):
        return {
            "id": f"p-{account}", "user": {"id": "u-maya"}, "account": {"id": account},
            "work_platform": {"name": platform}, "updated_at": updated, "full_name": "Maya Stone",
            "first_name": "Maya", "last_name": "Stone", "gender": "FEMALE", "country": "gb", "language": "en",
            "emails": email, "reputation": {"follower_count": followers, "following_count": 120,
                                           "content_count": 48},
            "date_of_birth": "1996-07-14", "addresses": [{"type": "HOME", "city": "Leeds", "country": "GB"}],
            **more,
        }  # fmt: skip

    profiles = [
        prof("acc-ig", "Instagram", "2024-04-28T09:00:00Z", 52_000, username="maya.stone",
             url="https://www.instagram.com/maya.stone", image_url="https://images.example.com/maya.jpg",
             is_verified=True, is_business=False),
        prof("acc-yt", "YouTube", "2024-04-10T09:00:00Z", 180_000, username="MayaMakes",
             url="https://www.youtube.com/MayaMakes", image_url="https://images.example.com/maya-yt.jpg",
             is_verified=False, is_business=True),
    ]  # fmt: skip
    accounts = [
        {"id": acc, "user": {"id": "u-maya"}, "work_platform": {"name": platform}, "status": status}
        for acc, platform, status in SAMPLE_ACCOUNTS
    ]
    audience, contents = _sample_audience(), _sample_contents()
    records = {
        "users": [{"id": "u-maya", "external_id": "crm-1042"}],
        "profiles": profiles,
        "accounts": accounts,
    }
    records |= {"audience": audience, "contents": contents}
    out = {}
    for resource, rows in records.items():
        path = root / f"{resource}.parquet"
        write_records_parquet(rows, path)
        out[resource] = [path]
    return out


def _sample_audience() -> list[dict]:
    """The sample creator's audience on both platforms."""
    return [
        {"user": {"id": "u-maya"}, "account": {"id": acc}, "work_platform": {"name": platform},
         "countries": [{"code": c, "value": v} for c, v in (("GB", gb), ("US", 25.0), ("IN", 10.0))],
         "cities": [{"name": "London", "value": 12.5}, {"name": "Leeds", "value": 4.0}],
         "gender_age_distribution": [{"gender": "FEMALE", "age_range": "25-34", "value": 31.0},
                                     {"gender": "MALE", "age_range": "25-34", "value": 22.0},
                                     {"gender": "FEMALE", "age_range": "18-24", "value": 18.0}],
         "credibility_score": credibility, "updated_at": "2024-04-30T00:00:00Z"}
        for acc, platform, gb, credibility in (
            ("acc-ig", "Instagram", 48.0, 0.82), ("acc-yt", "YouTube", 36.0, 0.91)
        )
    ]  # fmt: skip


def _sample_contents() -> list[dict]:
    """Eight Instagram posts of the sample creator, every three days back from the sample's end."""
    return [
        {"id": f"post-{i}", "user": {"id": "u-maya"}, "account": {"id": "acc-ig"},
         "work_platform": {"name": "Instagram"}, "title": f"Post {i}", "url": f"https://www.instagram.com/p/{i}",
         "format": "IMAGE", "type": "POST",
         "published_at": (SAMPLE_END - timedelta(days=3 * i + 1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
         "engagement": {"like_count": 1800 + 100 * i, "comment_count": 90, "view_count": 21000,
                        "share_count": 40}}
        for i in range(8)
    ]  # fmt: skip


def example_user(m: Mapping) -> dict:
    """The Insider user the transform writes for the sample creator (a run covering the engagement window)."""
    return _example(m)[0]


def example_clear(m: Mapping) -> dict:
    """The sample creator's clears.jsonl line: the attributes of its lapsed platform (TikTok)."""
    return _example(m)[1]


def _example(m: Mapping) -> tuple[dict, dict]:
    from creator_sync.pipeline.transform import transform_run

    with tempfile.TemporaryDirectory() as tmp:
        inputs = sample_inputs(Path(tmp) / "fetch")
        start = SAMPLE_END - timedelta(hours=1)
        days = Settings.model_fields["engagement_window_days"].default
        result = transform_run(
            inputs, start=start, end=SAMPLE_END, events_from=SAMPLE_END - timedelta(days=days),
            out_dir=Path(tmp) / "out", mapping=m, engagement_days=days,
        )  # fmt: skip
        user = json.loads(result.users_path.read_text().splitlines()[0])
        clear = json.loads(result.clears_path.read_text().splitlines()[0])
    user["events"] = user.get("events", [])[:1]  # one event is enough to show the shape
    return user, clear


def with_audience(m: Mapping) -> Mapping:
    """`m` with the audience opt-ins on (their sources named as their docs say)."""
    sources = {"countries": "countries", "cities": "cities", "gender_age": "gender_age_distribution"}
    attributes = dict(m.attributes)
    for name, column in sources.items():
        for suffix in ("", "_shares"):
            key = f"custom.audience_top_{name}{suffix}"
            attributes[key] = attributes[key].model_copy(update={"source": f"audience.{column}"})
    credibility = "custom.audience_credibility"
    attributes[credibility] = attributes[credibility].model_copy(
        update={"source": "audience.credibility_score"}
    )
    return dataclasses.replace(m, attributes=attributes)


def audience_example(m: Mapping) -> dict:
    """The sample creator's audience attributes with the audience opt-ins on."""
    custom = example_user(with_audience(m))["attributes"]["custom"]
    return {k: v for k, v in custom.items() if "_audience_" in k}


def markdown(m: Mapping | None = None) -> str:
    m = m or load_mapping()
    lines = [INTRO, *_identifiers(m), "", *_attributes(m), "", *_content_attributes(m), CONSENT, *_events(m)]
    lines += ["", *_registries(), ""]
    lines += [
        "## Example: one creator on two platforms",
        "",
        "What the transform writes for a sample creator (Instagram and YouTube connected, audience on both,",
        "a TikTok account whose session expired, eight Instagram posts in the month before the run's end;",
        "the run's contents cover the engagement window; one of the events shown). Produced by",
        "`example_user` in",
        "`include/creator_sync/pipeline/mapping_doc.py`; tests/pipeline/test_mapping_doc.py compares.",
        "",
        "```json",
        json.dumps(example_user(m), indent=2, ensure_ascii=False),
        "```",
        "",
        "The same creator's line of clears.jsonl: the attributes of its lapsed platform (TikTok), removed",
        "at Insider through Delete User Attribute after the upsert (`example_clear`):",
        "",
        "```json",
        json.dumps(example_clear(m), ensure_ascii=False),
        "```",
        "",
        "The same creator's audience attributes once the mapping names the audience sources (opt-in):",
        "",
        "```json",
        json.dumps(audience_example(m), ensure_ascii=False, indent=2),
        "```",
        "",
        *_income_attributes(m),  # after the example user: its block is the doc's first JSON block
        REASONS,
    ]
    return "\n".join(lines).rstrip("\n") + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
