from __future__ import annotations

import pandas as pd

from creator_sync.pipeline.identity import to_e164
from creator_sync.pipeline.validate import event_reasons, identifier_reasons


def test_identifier_reasons_in_priority_order():
    frame = pd.DataFrame(
        {
            "uuid": ["u1", 12345, "u3", "u4", "u5", None],
            "email": ["a@b.co", "a@b.co", "sample", None, None, None],
            "phone_number": [None, None, "+442079460018", "12345", None, None],
        }
    )
    reasons = identifier_reasons(frame, require_contact=True).tolist()
    assert pd.isna(reasons[0])
    assert reasons[1:] == [
        "invalid_uuid",
        "malformed_email",
        "non_e164_phone",
        "no_usable_identifier",
        "missing_identifier",
    ]
    relaxed = identifier_reasons(frame, require_contact=False)
    assert pd.isna(relaxed.iloc[4])  # uuid alone is an identifier


def test_phone_normalisation():
    assert to_e164("020 7946 0018", "GB") == "+442079460018"
    assert to_e164("(201) 555-0123", "US") == "+12015550123"
    assert to_e164("+49 30 901820", None) == "+4930901820"
    assert to_e164("12345", "US") is None


def test_event_rules():
    names = pd.Series(["content_published", "purchase", "purchase", "x"])
    stamps = pd.Series(
        ["2024-05-01T10:00:00Z", "2021-01-17T14:41:21+03:00", "2024-05-01T10:00:00Z", "2024-05-01 10:00"]
    )
    params = pd.DataFrame(
        {
            "event_group_id": [None, "O1", None, None],
            "currency": [None, "USD", "USD", None],
            "quantity": [None, 1, 1, None],
            "unit_sale_price": [None, 9.9, 9.9, None],
        }
    )
    reasons = event_reasons(names, stamps, params).tolist()
    assert pd.isna(reasons[0]) and pd.isna(reasons[1])
    assert reasons[2:] == ["purchase_missing_params", "invalid_event_timestamp"]
