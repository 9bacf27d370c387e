"""The secrets scan can fail: a leaked token in a log line, an XCom value or a report is found, in plain,
Basic-auth and URL-encoded form; clean texts pass."""

from __future__ import annotations

import base64
from urllib.parse import quote

from devtools.connections import connections_file_entries
from devtools.secrets_scan import Finding, Secret, connection_secrets, find_secrets


def test_every_connection_password_is_a_secret_with_its_basic_auth_form():
    entries = connections_file_entries()
    names = {s.name for s in connection_secrets()}
    for conn_id, entry in entries.items():
        if entry.get("password"):
            assert f"{conn_id} password" in names


def test_a_leaked_token_is_found_and_named_without_its_value():
    secrets = connection_secrets()
    token = connections_file_entries()["insider_default"]["password"]
    iq = connections_file_entries()["insightiq_default"]
    basic = base64.b64encode(f"{iq['login']}:{iq['password']}".encode()).decode()
    texts = [
        ("log upsert/attempt=1.log", f"INFO - headers {{'X-REQUEST-TOKEN': '{token}'}}"),
        ("xcom fetch/return_value", f'{{"auth": "Basic {basic}"}}'),
        ("report run/report.md", "sent 910 users"),
    ]
    findings = find_secrets(texts, secrets)
    assert {(f.where, f.secret) for f in findings} == {
        ("log upsert/attempt=1.log", "insider_default password"),
        ("xcom fetch/return_value", "insightiq_default Basic auth"),
    }
    assert all(token not in str(f) and basic not in str(f) for f in findings)


def test_url_encoded_secrets_are_found_and_clean_texts_pass():
    secret = Secret("x password", "p@ss/word+1")
    assert find_secrets([("run note", "https://h/?token=p%40ss%2Fword%2B1")], [secret])
    assert find_secrets([("run note", "Reconciliation holds: 1000 = 910 + 90")], [secret]) == []


# -- issue 24: every place and every secret -------------------------------------------------------------

S3_SECRET = "s3-secret-access-key-0123"
ALERT_TOKEN = "alert/hook+token-4567"
ADMIN_PASSWORD = "demo-admin-pw-89ab"


def _deployment(tmp_path):
    """An AIRFLOW_HOME with one leak in each place the scan must reach, and the stack's environment."""
    import json
    import sqlite3

    import pyarrow as pa
    import pyarrow.parquet as pq

    from creator_sync.routes.callback import derived_callback_token

    insider_token = connections_file_entries()["insider_default"]["password"]
    callback = derived_callback_token(insider_token)
    env = {
        "AIRFLOW_CONN_CREATOR_SYNC_S3": json.dumps(
            {"conn_type": "aws", "login": "AKIAEXAMPLE", "extra": {"aws_secret_access_key": S3_SECRET}}
        ),
        "AIRFLOW_CONN_CREATOR_SYNC_ALERTS": f"http://alerts:{quote(ALERT_TOKEN, safe='')}@hooks.example/x",
    }
    home = tmp_path / "airflow"
    (home / "logs" / "scheduler").mkdir(parents=True)
    (home / "simple_auth_manager_passwords.json.generated").write_text(json.dumps({"admin": ADMIN_PASSWORD}))
    (home / "standalone.log").write_text(
        f"Simple auth manager | Password for user 'admin': {ADMIN_PASSWORD}\n"  # Airflow's banner: allowed
        f"api-server | POST /upsert error_callback_endpoint=https://h/cb?token={callback}\n"
    )
    (home / "logs" / "scheduler" / "latest.log").write_text(f"login admin:{ADMIN_PASSWORD}\n")
    db = sqlite3.connect(home / "state.db")
    db.execute("CREATE TABLE dead_letters (payload TEXT)")
    db.execute("INSERT INTO dead_letters VALUES (?)", (json.dumps({"note": S3_SECRET}),))
    db.execute("CREATE TABLE in_flight_batches (record TEXT)")
    db.execute("INSERT INTO in_flight_batches VALUES (?)", (json.dumps({"token": insider_token}),))
    db.commit()
    db.close()
    run = home / "data" / "runs" / "r1"
    run.mkdir(parents=True)
    (run / "users.jsonl").write_text(json.dumps({"bio": ALERT_TOKEN}) + "\n")
    pq.write_table(pa.table({"user.id": ["u1"], "note": [S3_SECRET]}), run / "users.parquet")
    return home, env


def test_every_place_and_every_secret_is_scanned(tmp_path):
    from devtools.secrets_scan import all_secrets, deployment_texts

    home, env = _deployment(tmp_path)
    findings = {
        (f.where, f.secret)
        for f in find_secrets(deployment_texts(home, [home / "state.db"]), all_secrets(env, home))
    }
    assert findings == {
        ("server log standalone.log", "Insider error-callback token"),
        ("server log logs/scheduler/latest.log", "Airflow user admin password"),
        ("state DB state.db table dead_letters", "creator_sync_s3 (environment) extra.aws_secret_access_key"),
        ("state DB state.db table in_flight_batches", "insider_default password"),
        ("run file runs/r1/users.jsonl", "creator_sync_alerts (environment) password"),
        ("run file runs/r1/users.parquet", "creator_sync_s3 (environment) extra.aws_secret_access_key"),
    }


def test_the_file_connections_and_task_places_alone_miss_these_leaks(tmp_path):
    """What the scan found before issue 24: neither these secrets nor these places."""
    home, _env = _deployment(tmp_path)
    from devtools.secrets_scan import deployment_texts

    assert find_secrets(deployment_texts(home, [home / "state.db"]), connection_secrets()) == [
        Finding("state DB state.db table in_flight_batches", "insider_default password")
    ]


def test_connection_values_in_uri_and_json_form():
    from devtools.secrets_scan import connection_value_secrets

    uri = connection_value_secrets(
        "x", "aws://AKIA:p%40ss-word@/?region_name=eu&aws_session_token=tok-123456"
    )
    assert {s.name: s.value for s in uri} == {
        "x (environment) password": "p@ss-word",
        "x (environment) Basic auth": base64.b64encode(b"AKIA:p@ss-word").decode(),
        "x (environment) extra.aws_session_token": "tok-123456",
    }
    extra_str = connection_value_secrets(
        "y", '{"conn_type": "http", "extra": "{\\"api_key\\": \\"k-999999\\"}"}'
    )
    assert [s.value for s in extra_str] == ["k-999999"]
