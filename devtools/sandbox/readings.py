"""The alternative readings of the vendor docs: options that make a sandbox answer the way a source the
project did not follow by default says the vendor does (docs/vendor-contract.md lists each disagreement).

Every service holds one ``Readings`` (all off by default: the sandboxes answer the project's default
reading). Set them with ``--reading NAME[=VALUE]`` (repeatable) or ``POST /_sandbox/config {NAME: VALUE}``:

- ``bare_429``: every 429 (real limit rejections and injected faults) comes without ``Retry-After``
  (Insider: Retry-After is "sometimes present").
- ``throttle_403``: every 429 is sent as a 403 ``{"success": false, "message": "Request Limit Exceeded"}``
  (Insider's cross-API status-code page); with ``bare_429`` also without ``Retry-After``.
- ``other_signature_header`` (InsightIQ): webhook deliveries are signed under ``Phyllo-Signature`` instead
  of ``Webhook-Signatures``.
- ``contents_require_account_id`` (InsightIQ): ``GET /v1/social/contents`` without ``account_id`` is a 400
  (the compiled webhook-events reference marks it required).
- ``unifier`` (Insider; ``email`` | ``phone_number`` | ``uuid``, empty = not checked): the account's unifier
  identifier; a Data Governance body whose ``identifiers`` lack it is a 400.
- ``disconnected_data`` (InsightIQ; ``listed`` | ``hidden`` | ``refused``, also ``--disconnected-data``): what
  InsightIQ does with the data of a disconnected account (status ``NOT_CONNECTED`` or ``SESSION_EXPIRED``),
  on which the docs are silent. ``listed`` (the default): its items stay listed. ``hidden``: its items
  (contents, content groups, comments, income, profiles, audience) are absent from every list, search and
  item read while it is disconnected, and back once it connects again. ``refused``: a request naming it (a
  list or the profiles by ``account_id``, the audience, a refresh or fetch-historic job) is a 400 in the
  InsightIQ error body (code ``account_not_connected``); the account itself stays readable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields

THROTTLE_403_BODY = {"success": False, "message": "Request Limit Exceeded"}
UNIFIERS = ("email", "phone_number", "uuid")
DISCONNECTED_DATA = ("listed", "hidden", "refused")
CHOICES = {"unifier": ("", *UNIFIERS), "disconnected_data": DISCONNECTED_DATA}


@dataclass
class Readings:
    bare_429: bool = False
    throttle_403: bool = False
    other_signature_header: bool = False
    contents_require_account_id: bool = False
    unifier: str = ""
    disconnected_data: str = "listed"

    def config(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def configure(self, values: dict) -> None:
        for f in fields(self):
            if f.name not in values:
                continue
            value = values[f.name]
            if f.name in CHOICES:
                value = str(value or "") or CHOICES[f.name][0]
                if value not in CHOICES[f.name]:
                    raise ValueError(f"{f.name} must be one of {list(CHOICES[f.name])}, got {value!r}")
            elif isinstance(value, str):
                value = value.strip().lower() in ("1", "true", "yes", "on")
            setattr(self, f.name, value if f.name in CHOICES else bool(value))

    def throttle_send(self, send):
        """The ASGI ``send`` that reshapes every 429 as ``bare_429`` / ``throttle_403`` say (``send`` itself
        when both are off)."""
        if not (self.bare_429 or self.throttle_403):
            return send
        bare, as_403 = self.bare_429, self.throttle_403
        replaced = False

        async def reshaped(message) -> None:
            nonlocal replaced
            if message["type"] == "http.response.start" and message["status"] == 429:
                headers = [
                    (k, v) for k, v in message.get("headers", []) if not bare or k.lower() != b"retry-after"
                ]
                if as_403:
                    body = json.dumps(THROTTLE_403_BODY).encode()
                    kept = [(k, v) for k, v in headers if k.lower() == b"retry-after"]
                    kept += [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ]
                    replaced = True
                    await send({"type": "http.response.start", "status": 403, "headers": kept})
                    await send({"type": "http.response.body", "body": body})
                    return
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and replaced:
                return  # the original 429 body, already replaced
            await send(message)

        return reshaped


def unifier_missing(readings: Readings, identifiers: dict) -> str | None:
    """The 400 message for a Data Governance body whose ``identifiers`` lack the account's unifier (None when
    the ``unifier`` reading is off or the identifier is there)."""
    if not readings.unifier or identifiers.get(readings.unifier) not in (None, ""):
        return None
    return (
        f"identifiers.{readings.unifier} is required: the account unifies on {readings.unifier}: bad request"
    )


def parse_reading_args(items: list[str] | None) -> dict:
    """``--reading NAME[=VALUE]`` arguments as a config dict (a bare NAME means true)."""
    known = {f.name for f in fields(Readings)}
    values: dict = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        name = name.strip()
        if name not in known:
            raise SystemExit(f"--reading {name!r} is unknown; known: {sorted(known)}")
        values[name] = value if sep else True
    return values
