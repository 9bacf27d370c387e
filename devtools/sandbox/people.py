"""Creator personal data (names, country, email, phone), rebuilt on demand from (seed, creator index).

Invalid-data reasons are decided in bulk by ``data.Dataset``; this module only renders them:
- ``malformed_email``: the email fails ``^.+@.+\\..+$`` and the creator has no phone;
- ``non_e164_phone``: the phone cannot become E.164 even with the country, and the creator has no email;
- ``no_usable_identifier``: neither email nor phone.
Every other creator has at least one valid email (matching Insider's regexp) or a phone that is E.164 or
national format valid for the creator's country.
"""

from __future__ import annotations

import random

import phonenumbers

FIRST = {
    "female": ["Jane", "Maria", "Ayse", "Emma", "Sofia", "Priya", "Yuki", "Chloe", "Ana", "Lena", "Olivia"],
    "male": ["John", "Arvind", "Mehmet", "Lucas", "Noah", "Hiro", "Diego", "Liam", "Jonas", "Marco", "Omar"],
}
LAST = [
    "Doe",
    "Smith",
    "Yilmaz",
    "Garcia",
    "Rossi",
    "Muller",
    "Tanaka",
    "Silva",
    "Khan",
    "Martin",
    "Kaya",
    "Jansen",
    "Lopez",
    "Brown",
    "Dubois",
    "Sharma",
    "Wilson",
    "Schmidt",
    "Costa",
    "Nguyen",
]
COUNTRIES = ["US", "GB", "DE", "FR", "IN", "BR", "TR", "ES", "IT", "CA", "AU", "MX", "NL", "JP"]
COUNTRY_WEIGHTS = [30, 10, 7, 6, 10, 8, 6, 5, 4, 4, 3, 3, 2, 2]
LANGUAGE = {
    "US": "en",
    "GB": "en",
    "DE": "de",
    "FR": "fr",
    "IN": "en",
    "BR": "pt",
    "TR": "tr",
    "ES": "es",
    "IT": "it",
    "CA": "en",
    "AU": "en",
    "MX": "es",
    "NL": "nl",
    "JP": "ja",
}
DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "example.com", "creators.io"]
BAD_PHONES = ["12345", "000", "1234", "99", "0"]
REASONS = ["malformed_email", "non_e164_phone", "no_usable_identifier"]
# contact kinds for valid creators
EMAIL_AND_PHONE, EMAIL_ONLY, PHONE_ONLY = 0, 1, 2


def _valid_phone(index: int, country: str) -> phonenumbers.PhoneNumber:
    """A valid mobile number for the country, unique per creator index (real people do not share
    numbers; shared ones would make Insider merge two creators into one profile)."""
    example = phonenumbers.example_number_for_type(country, phonenumbers.PhoneNumberType.MOBILE)
    digits = str(example.national_number)
    for attempt in range(50):
        suffix = (index + attempt * 1_000_003) % 10**7
        candidate = digits[:-7] + f"{suffix:07d}"
        number = phonenumbers.PhoneNumber(country_code=example.country_code, national_number=int(candidate))
        if phonenumbers.is_valid_number_for_region(number, country):
            return number
    return example


def person(seed: int, index: int, reason: int, contact: int, national_phone: bool) -> dict:
    """reason: 0 valid, 1..3 = REASONS[reason-1]."""
    rng = random.Random(f"{seed}:person:{index}")
    gender = rng.choice(["female", "male"])
    first, last = rng.choice(FIRST[gender]), rng.choice(LAST)
    country = rng.choices(COUNTRIES, COUNTRY_WEIGHTS)[0]
    local = f"{first}.{last}{index}".lower()
    email = phone = None
    if reason == 1:
        email = rng.choice([f"{local}@example", f"{local.replace('.', '')}.example.com"])
    elif reason == 2:
        phone = rng.choice(BAD_PHONES)
    elif reason == 0:
        if contact in (EMAIL_AND_PHONE, EMAIL_ONLY):
            email = f"{local}@{rng.choice(DOMAINS)}"
        if contact in (EMAIL_AND_PHONE, PHONE_ONLY):
            number = _valid_phone(index, country)
            fmt = (
                phonenumbers.PhoneNumberFormat.NATIONAL
                if national_phone
                else phonenumbers.PhoneNumberFormat.E164
            )
            phone = phonenumbers.format_number(number, fmt)
    return {
        "first_name": first,
        "last_name": last,
        "full_name": f"{first} {last}",
        "gender": gender.upper(),
        "country": country,
        "language": LANGUAGE[country],
        "email": email,
        "phone": phone,
    }
