"""Request/response bodies copied from the vendor docs in /work/shared/api-docs/ (the spec)."""

from __future__ import annotations

import copy

IQ_AUTH = ("sandbox-client-id", "sandbox-client-secret")
INSIDER_HEADERS = {"X-PARTNER-NAME": "mybrand", "X-REQUEST-TOKEN": "1a2b3c4e5d6f"}
PUSH_HEADERS = {"Authorization": "Bearer 1a2b3c4d5e6f"}
NOW = "2026-01-15T12:00:00Z"

PURCHASE = {
    "event_name": "purchase",
    "timestamp": "2021-01-10T21:35:20Z",
    "event_params": {
        "product_id": "ABC21000",
        "name": "Your Product Name",
        "unit_price": 990.9,
        "unit_sale_price": 890.9,
        "event_group_id": "ORDER123",
        "taxonomy": ["Electronic", "Phone"],
        "currency": "USD",
        "quantity": 1,
    },
}
ACCOUNT_CREATED = {
    "event_name": "account_created",
    "timestamp": "2021-01-17T14:41:21+03:00",
    "event_params": {
        "custom": {
            "customer_type": "trial",
            "trial_start_date": "2021-01-17T14:39:21+03:00",
            "trial_end_date": "2021-01-24T14:41:21+03:00",
        }
    },
}
ATTRIBUTES = {
    "email_optin": True,
    "age": 30,
    "language": "en_US",
    "static_segment_id": [1, 2],
    "birthday": "1980-01-01T00:00:00Z",
    "custom": {"favorite_color": ["green"]},
}
UPSERT_1 = {
    "skip_hook": False,
    "users": [
        {
            "identifiers": {
                "email": "sample@useinsider.com",
                "uuid": "1x2y3z",
                "custom": {"user_loyalty_id": "xyz123"},
            },
            "attributes": ATTRIBUTES,
            "events": [PURCHASE, ACCOUNT_CREATED],
        }
    ],
}
UPSERT_2 = {
    "skip_hook": False,
    "error_callback_endpoint": "http://your-error-callback-endpoint.yourdomain.com",
    "users": [
        {
            "insider_id": "sampleinsiderid",
            "attributes": ATTRIBUTES,
            "not_append": True,
            "events": [PURCHASE, ACCOUNT_CREATED],
        }
    ],
}
UPSERT_3 = copy.deepcopy(UPSERT_2)
UPSERT_3["users"].append(
    {
        "insider_id": "sampleinsiderid_2",
        "attributes": {
            **ATTRIBUTES,
            "age": 23,
            "birthday": "1996-08-08T00:00:00Z",
            "custom": {"favorite_color": ["blue"]},
        },
        "not_append": True,
        "events": [
            {
                **PURCHASE,
                "timestamp": "2024-01-10T21:35:20Z",
                "event_params": {**PURCHASE["event_params"], "product_id": "CYD21000"},
            },
            {
                **ACCOUNT_CREATED,
                "timestamp": "2022-02-17T14:41:21+03:00",
                "event_params": {
                    "custom": {
                        "customer_type": "trial",
                        "trial_start_date": "2021-04-17T14:39:21+03:00",
                        "trial_end_date": "2021-04-24T14:41:21+03:00",
                    }
                },
            },
        ],
    }
)
PURCHASE_ERRORS = {
    "users.0.events.0.event_params.*.required": [
        "event_group_id parameter is required on purchase event",
        "unit_sale_price parameter is required on purchase event",
    ]
}
# (identifiers of the failing user, the doc's extra error entries)
VALIDATION_EXAMPLES = [
    ({"email": "sample@useinsider.com"}, {}),
    (
        None,
        {
            "users.0.identifiers.required": ["either insider_id or idenifiers must be specified"],
            "users.0.insider_id.required": ["either insider_id or idenifiers must be specified"],
        },
    ),
    (
        {"email": "sample"},
        {"users.0.identifiers.*.regexp(^.+@.+\\..+$)": ["not a valid email address: sample"]},
    ),
    ({"uuid": 12345}, {"users.0.identifiers.*.type(string)": ["uuid must be string: 12345"]}),
    (
        {"user_code": "abc"},
        {
            "users.0.identifiers.*.in(defaults_column)": [
                "key must be one of phone_number(pn), email(em) or uuid"
            ]
        },
    ),
    (
        {"phone_number": "12345"},
        {"users.0.identifiers.*.regexp(^\\+[1-9]\\d{6,14}$)": ["user has an invalid phone number: 12345"]},
    ),
]
WANTED = [
    {"event_name": "email_click", "params": ["campaign_id", "timestamp"]},
    {"event_name": "item_added_to_cart", "params": ["product_id", "name", "timestamp"]},
    {"event_name": "journey_entered", "params": ["journey_id", "timestamp"]},
]
EVENTS_QUERY = {"start_date": 1606311893, "end_date": 1611582293, "wanted": WANTED}
PROFILE_1 = {
    "identifiers": {"email": "example@useinsider.com"},
    "attributes": ["email", "name", "surname"],
    "events": EVENTS_QUERY,
    "quota": True,
}
PROFILE_2 = {
    "identifiers": {"email": "example@useinsider.com"},
    "attributes": ["email", "name", "surname", "c_member_code"],
    "events": EVENTS_QUERY,
    "quota": True,
}
PROFILE_3 = {
    "insider_id": "sampleinsiderid",
    "attributes": ["email", "name", "surname"],
    "events": EVENTS_QUERY,
    "quota": True,
}
PROFILE_RESPONSE = {
    "attributes": {
        "email": "example@useinsider.com",
        "name": "John",
        "surname": "Doe",
        "iid": "insider-id-user-1",
    },
    "events": {
        "email_click": [
            {"campaign_id": 1456, "created_date": "2021-01-06T23:34:09Z"},
            {"campaign_id": 1245, "created_date": "2021-01-01T12:56:21Z"},
        ],
        "item_added_to_cart": [
            {"product_id": "3254634", "name": "Blue Shirt", "created_date": "2021-01-04T15:04:34Z"}
        ],
        "journey_entered": [{"journey_id": 12, "created_date": "2021-01-02T09:35:46Z"}],
    },
    "quota": {"cost": 2.5, "used": 2.5, "total": 1000},
}
WEB_PUSH = {"partner_id": "100XXXXX", "title": "Title of campaign", "language": "en_GB", "is_all": False}
# InsightIQ bodies
IQ_CREATE_USER = {"name": "Arvind", "external_id": "c8b24285-e576-4c7a-9196-26c0c401afe84"}
IQ_SDK_PRODUCTS = ["IDENTITY", "ENGAGEMENT", "ENGAGEMENT.AUDIENCE", "INCOME"]
IQ_UPDATE_ACCOUNT = {
    "data": {
        "identity": {"monitoring_type": "STANDARD", "audience": {"monitoring_type": "STANDARD"}},
        "engagement": {"monitoring_type": "STANDARD", "audience": {"monitoring_type": "STANDARD"}},
        "income": {"monitoring_type": "STANDARD"},
    }
}
IQ_WEBHOOK = {"url": "http://0.0.0.0:8000/webhook", "events": ["PROFILES.ADDED", "PROFILES.UPDATED"]}
IQ_SEND = {
    "payload": {
        "event": "PROFILES.ADDED",
        "name": "profile added",
        "data": {
            "account_id": "4544993eac6f4c4a9ec27e23f6cb8c56",
            "user_id": "6bd84fa308f84e66abf108fd3d29f9ef",
            "profile_id": "74e5f67b9df04cbeba0894d749561447",
            "last_updated_time": "2021-11-10 12:59:51.874364",
        },
    }
}
