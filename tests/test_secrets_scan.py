"""The secrets scan can fail: a leaked token in a log line, an XCom value or a report is found, in plain,
Basic-auth and URL-encoded form; clean texts pass."""

from __future__ import annotations

import base64

from devtools.connections import connections_file_entries
from devtools.secrets_scan import Secret, connection_secrets, find_secrets


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
