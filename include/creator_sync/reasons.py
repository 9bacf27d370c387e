"""The dead-letter reason codes: stable strings that dashboards, the UI view and the replay DAG rely on.

Light on purpose (no pandas): DAG files and the UI import it at parse time. docs/mapping.md lists them.
"""

from __future__ import annotations

MISSING_IDENTIFIER = "missing_identifier"  # no identifier at all
INVALID_UUID = "invalid_uuid"  # uuid present but not a usable key (validate.usable_uuid)
MALFORMED_EMAIL = "malformed_email"  # email present, does not match ^.+@.+\..+$
NON_E164_PHONE = "non_e164_phone"  # phone present, cannot become ^\+[1-9]\d{6,14}$
NO_USABLE_IDENTIFIER = "no_usable_identifier"  # business rule: no valid email and no valid phone
INVALID_EVENT_TIMESTAMP = "invalid_event_timestamp"  # not RFC 3339
PURCHASE_MISSING_PARAMS = "purchase_missing_params"  # purchase event without its required params
CART_PAGE_VIEW_MISSING_PARAMS = "cart_page_view_missing_params"  # cart_page_view without its required params
USER_TOO_LARGE = "user_too_large"  # one user's JSON over the request size limit
VENDOR_REJECTED = "vendor_rejected"  # Insider answered 200 but listed the user under fail
UNIFICATION_ERROR = "unification_error"  # Insider called the error callback for the user
# an InsightIQ record without its id / user id, or an event record whose time is not ISO 8601
MALFORMED_SOURCE_RECORD = "malformed_source_record"
# an upsert's answer was lost and the Profile API could not say whether the user's events arrived (it
# returned the events without their key params): the events are held (never re-sent blindly) for an
# operator to check at Insider
UNSETTLED_LOST_ANSWER = "unsettled_lost_answer"
# a Delete User Attribute request (clearing a lapsed platform's attributes) Insider did not confirm for the
# user: the payload is the request element, not a user; the next run's clears send it again
CLEAR_FAILED = "clear_failed"
# an InsightIQ income transaction or payout without a usable id, amount, ISO 4217 currency or time: kept out
# of the income attributes (creator_sync.pipeline.income); the payload is the record, not a user
INVALID_INCOME_ITEM = "invalid_income_item"
REASONS = (
    MISSING_IDENTIFIER,
    INVALID_UUID,
    MALFORMED_EMAIL,
    NON_E164_PHONE,
    NO_USABLE_IDENTIFIER,
    INVALID_EVENT_TIMESTAMP,
    PURCHASE_MISSING_PARAMS,
    CART_PAGE_VIEW_MISSING_PARAMS,
    USER_TOO_LARGE,
    VENDOR_REJECTED,
    UNIFICATION_ERROR,
    MALFORMED_SOURCE_RECORD,
    UNSETTLED_LOST_ANSWER,
    CLEAR_FAILED,
    INVALID_INCOME_ITEM,
)

# Reasons whose dead letters hold a user payload that can be sent again (creator_sync_replay's choices);
# a malformed_source_record letter holds an InsightIQ record, not a user; an unsettled_lost_answer letter's
# events may be at Insider already (an operator decides); a clear_failed letter holds a delete, which the
# next run's clears repeat; an invalid_income_item letter holds an InsightIQ income record.
REPLAYABLE = tuple(
    r
    for r in REASONS
    if r not in (MALFORMED_SOURCE_RECORD, UNSETTLED_LOST_ANSWER, CLEAR_FAILED, INVALID_INCOME_ITEM)
)
