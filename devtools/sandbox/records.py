"""Render InsightIQ JSON records (users, accounts, profiles, contents, income...) from a Dataset index."""

from __future__ import annotations

import functools
import random
from datetime import UTC, datetime

from devtools.sandbox import ids
from devtools.sandbox.data import (
    ACCOUNT_STATUSES,
    DAY,
    PLATFORMS,
    SYNC_STATUSES,
    Dataset,
)
from devtools.sandbox.people import person

TOPICS = ["travel", "food", "tech", "fitness"]
# Profile personal data, where the platform gives it: `date_of_birth` is a free string in the vendor's
# OpenAPI (its example "11/26/1989"); `addresses` a list of {type, address} whose address is free text in the
# vendor's example ("520 North Avenue, CA, USA": a state where a city would be). The docs give no shape, so
# the sandbox's addresses take several (ADDRESS_SHAPES): the vendor example's, "street, city, country", the
# country's own postal form, and a structured one with `city` and `country` keys beside the text. Shares of
# the profiles that carry them:
BIRTH_DATE_SHARE = 0.35  # of those, half in the documented MM/DD/YYYY form, half as YYYY-MM-DD
ADDRESS_SHARE = 0.25
CREDIBILITY_SHARE = 0.8  # of the audience records, those with a credibility_score
CITIES = {
    "US": ("New York", "Los Angeles", "Austin"),
    "GB": ("London", "Manchester"),
    "DE": ("Berlin", "Munich"),
    "FR": ("Paris", "Lyon"),
    "IN": ("Mumbai", "Bengaluru"),
    "BR": ("São Paulo", "Rio de Janeiro"),
    "TR": ("Istanbul", "Izmir"),
    "ES": ("Madrid", "Barcelona"),
    "IT": ("Milan", "Rome"),
    "CA": ("Toronto", "Vancouver"),
    "AU": ("Sydney", "Melbourne"),
    "MX": ("Mexico City", "Guadalajara"),
    "NL": ("Amsterdam", "Rotterdam"),
    "JP": ("Tokyo", "Osaka"),
}
STREETS = ("Main Street", "North Avenue", "Station Road", "Park Lane", "Harbour Way")
# a region code per country whose addresses name one (the vendor example's "CA"), and per city where the
# country has several
CITY_REGIONS = {"New York": "NY", "Austin": "TX", "Vancouver": "BC", "Rio de Janeiro": "RJ", "Munich": "BY"}
REGION_CODES = {
    "US": "CA",
    "CA": "ON",
    "AU": "NSW",
    "BR": "SP",
    "IN": "MH",
    "MX": "JAL",
    "DE": "BY",
    "IT": "MI",
}
COUNTRY_NAMES = {"US": "USA", "GB": "UK", "DE": "Germany", "BR": "Brasil", "JP": "Japan", "FR": "France"}
# the country's own postal form: {n} number, {street}, {city}, {region} code, {post} postcode, {country} name
POSTAL_FORMS = {
    "US": "{n} {street}, {city}, {region} {post}, {country}",
    "GB": "{n} {street}, {city} SW1A 1AA, {country}",
    "BR": "{street} {n}, {city} - {region}, {post}-000, {country}",
    "JP": "{n}-1 {street}, {city} 100-0001, {country}",
    "CA": "{n} {street}, {city}, {region} M5V 2T6, {country}",
}
GENERIC_POSTAL_FORM = "{street} {n}, {post} {city}, {country}"
ADDRESS_SHAPES = (("vendor", 25), ("plain", 25), ("postal", 30), ("structured", 20))
# disconnection_source of a disconnected account (the vendor's sample shows the field, not its values): a
# user's disconnect and a lapsed platform session, as the sandbox tells them apart
DISCONNECTION_SOURCES = {"NOT_CONNECTED": "USER", "SESSION_EXPIRED": "PLATFORM"}
CURRENCIES = ["USD", "EUR", "GBP", "INR", "BRL", "TRY"]
FORMATS = {
    "VIDEO": ["VIDEO", "REELS", "STORY"],
    "IMAGE": ["POST", "STORY"],
    "TEXT": ["POST", "TWEET"],
    "COLLECTION": ["POST"],
}


def iso(epoch: float) -> str:
    """InsightIQ-style timestamp: UTC, no offset, microseconds (e.g. 2021-11-10T12:59:51.874364)."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def platform_ref(p: int) -> dict:
    pid, name = PLATFORMS[p][0], PLATFORMS[p][1]
    return {
        "id": pid,
        "name": name,
        "logo_url": f"https://cdn.insightiq.ai/platforms/logo/logos/{name.lower()}.png",
    }


class Renderer:
    def __init__(self, ds: Dataset) -> None:
        self.ds = ds
        self.codec = ds.codec
        self.person = functools.lru_cache(maxsize=65_536)(self._person)  # several renders per record

    def rng(self, *parts) -> random.Random:
        return random.Random(":".join(str(p) for p in (self.ds.seed, *parts)))

    # -- users ---------------------------------------------------------------------------------------
    def _person(self, c: int) -> dict:
        ds = self.ds
        return person(ds.seed, c, int(ds.reason[c]), int(ds.contact[c]), bool(ds.national_phone[c]))

    def user_ref(self, c: int) -> dict:
        return {"id": self.codec.make(ids.USER, c), "name": self.person(c)["full_name"]}

    def user(self, c: int) -> dict:
        created = int(self.ds.user_created[c])
        return {
            **self.user_ref(c),
            "external_id": f"cs-{c:07d}",
            "created_at": iso(created),
            "updated_at": iso(created + DAY),
        }

    # -- accounts ------------------------------------------------------------------------------------
    def username(self, a: int) -> str:
        p = self.person(int(self.ds.acc_creator[a]))
        return f"{p['first_name']}{p['last_name']}_{a}".lower()

    def account_ref(self, a: int) -> dict:
        return {"id": self.codec.make(ids.ACCOUNT, a), "platform_username": self.username(a)}

    def _updated(self, a: int, base: int) -> int:
        return max(base, self.ds.mutations.get(int(self.ds.acc_creator[a]), (0, 0))[1])

    def account(self, a: int) -> dict:
        ds, rng = self.ds, self.rng("account", a)
        c = int(ds.acc_creator[a])
        over = ds.account_overrides.get(a, {})
        created = int(ds.user_created[c]) + rng.randrange(DAY, 30 * DAY)
        last_sync = ds.now - rng.randrange(0, 2 * DAY)
        if a in ds.added:  # a brand-new account (Dataset.add_account): created and synced at its connection
            created = last_sync = ds.added[a]
        mon = over.get("monitoring", {})

        def product(key, status, audience=None):
            out = {
                "status": SYNC_STATUSES[status],
                "monitoring_type": mon.get(key, "STANDARD"),
                "last_sync_at": iso(last_sync) if status != 2 else None,
            }
            if audience is not None:
                out["audience"] = {
                    "status": audience,
                    "monitoring_type": mon.get(f"{key}.audience", "STANDARD"),
                    "last_sync_at": iso(last_sync) if audience == "SYNCED" else None,
                }
            return out

        aud = rng.choices(["SYNCED", "IN_PROGRESS", "NOT_SYNCED"], [85, 10, 5])[0]
        eng = int(ds.engagement_status[a])
        status = over.get("status", ACCOUNT_STATUSES[int(ds.acc_status[a])])
        return {
            "id": self.codec.make(ids.ACCOUNT, a),
            "created_at": iso(created),
            # a status change (changes.py) moves updated_at; so does every sync (last_sync)
            "updated_at": iso(max(self._updated(a, last_sync), over.get("status_at", 0))),
            "user": self.user_ref(c),
            "work_platform": platform_ref(int(ds.acc_platform[a])),
            "platform_username": self.username(a),
            "platform_profile_name": self.person(c)["full_name"],
            "platform_profile_id": str(rng.randrange(10**9, 10**10)),
            "profile_pic_url": f"https://images.example.com/avatars/{a}.jpg",
            "status": status,
            "disconnection_source": DISCONNECTION_SOURCES.get(status),
            "data": {
                "identity": product("identity", int(ds.identity_status[a]), aud),
                "engagement": product("engagement", eng, aud if eng != 2 else "NOT_SUPPORTED"),
                "income": product("income", int(ds.income_status[a])),
            },
            "last_sync_end_at": iso(last_sync),
        }

    # -- profiles ------------------------------------------------------------------------------------
    def reputation(self, a: int) -> dict:
        ds, rng = self.ds, self.rng("reputation", a)
        gen = ds.mutations.get(int(ds.acc_creator[a]), (0, 0))[0]
        followers = int(10 ** rng.uniform(2, 7))
        p = PLATFORMS[int(ds.acc_platform[a])][1]
        subs = int(followers * rng.uniform(0.05, 0.5)) if p in ("YouTube", "Twitch", "Patreon") else None
        return {
            "follower_count": followers + gen * max(1, followers // 100),
            "following_count": rng.randrange(0, 3000) + gen,
            "subscriber_count": None if subs is None else subs + gen,
            "content_count": ds.count("contents", a),
            "content_group_count": ds.count("content_groups", a),
            "watch_time_in_hours": round(rng.uniform(10, 1e5), 1) if p == "YouTube" else None,
        }

    def profile(self, a: int) -> dict:
        ds, rng = self.ds, self.rng("profile", a)
        c = int(ds.acc_creator[a])
        per = self.person(c)
        created = ds.added.get(a, int(ds.user_created[c]) + DAY)
        updated = self._updated(a, max(created, ds.now - rng.randrange(0, 30 * DAY)))
        username = self.username(a)
        platform = platform_ref(int(ds.acc_platform[a]))
        return {
            "id": self.codec.make(ids.PROFILE, a),
            "user": self.user_ref(c),
            "account": self.account_ref(a),
            "work_platform": platform,
            "username": username,
            "full_name": per["full_name"],
            "first_name": per["first_name"],
            "last_name": per["last_name"],
            "nick_name": None,
            "url": f"https://www.{platform['name'].lower()}.com/{username}",
            "image_url": f"https://images.example.com/avatars/{a}.jpg",
            "introduction": f"{per['first_name']} creates {rng.choice(TOPICS)} content.",
            "country": per["country"],
            "gender": per["gender"],
            "language": per["language"],
            "date_of_birth": self.date_of_birth(c),
            "reputation": self.reputation(a),
            "emails": [{"type": "WORK", "email_id": per["email"]}] if per["email"] else [],
            "phone_numbers": [{"type": "PERSONAL", "phone_number": per["phone"]}] if per["phone"] else [],
            "addresses": self.addresses(c, per["country"]),
            "is_verified": rng.random() < 0.2,
            "is_business": rng.random() < 0.3,
            "created_at": iso(created),
            "updated_at": iso(updated),
        }

    def date_of_birth(self, c: int) -> str | None:
        """A creator's date of birth (the same on each of their profiles), for BIRTH_DATE_SHARE of them."""
        rng = self.rng("birth", c)
        if rng.random() >= BIRTH_DATE_SHARE:
            return None
        born = datetime.fromtimestamp(self.ds.now, UTC).year - rng.randrange(16, 60)
        month, day = rng.randrange(1, 13), rng.randrange(1, 29)
        return f"{month:02d}/{day:02d}/{born}" if rng.random() < 0.5 else f"{born}-{month:02d}-{day:02d}"

    def addresses(self, c: int, country: str) -> list[dict]:
        """A home address for ADDRESS_SHARE of the creators, in one of ADDRESS_SHAPES: the vendor example's
        "520 North Avenue, CA, USA" (no city; countries with a region code, else the next shape), "street,
        city, country" (the country's ISO code), the country's postal form ("10 Main Street, Austin, TX 12345,
        USA", "Main Street 10, 12345 Berlin, Germany"), or a structured {type, address, city, country}."""
        rng = self.rng("address", c)
        if rng.random() >= ADDRESS_SHARE:
            return []
        city, n, street = rng.choice(CITIES[country]), rng.randrange(1, 900), rng.choice(STREETS)
        shape = rng.choices([s for s, _ in ADDRESS_SHAPES], [w for _, w in ADDRESS_SHAPES])[0]
        name = COUNTRY_NAMES.get(country, country)
        region = CITY_REGIONS.get(city, REGION_CODES.get(country))
        if shape == "vendor" and region:
            text = f"{n} {street}, {region}, {name}"
        elif shape == "postal":
            form, post = POSTAL_FORMS.get(country, GENERIC_POSTAL_FORM), f"{rng.randrange(10_000, 99_999)}"
            text = form.format(n=n, street=street, city=city, region=region, post=post, country=name)
        else:
            text = f"{n} {street}, {city}, {country}"
        extra = {"city": city, "country": country} if shape == "structured" else {}
        return [{"type": "HOME", "address": text, **extra}]

    def audience(self, a: int) -> dict:
        rng = self.rng("audience", a)
        countries = rng.sample(["US", "GB", "IN", "BR", "DE", "TR", "FR", "ES"], 4)
        shares = sorted((rng.uniform(5, 40) for _ in countries), reverse=True)
        return {
            "id": self.codec.make(ids.AUDIENCE, a),
            "account": self.account_ref(a),
            "user": self.user_ref(int(self.ds.acc_creator[a])),
            "work_platform": platform_ref(int(self.ds.acc_platform[a])),
            "countries": [{"code": c, "value": round(v, 2)} for c, v in zip(countries, shares, strict=True)],
            "cities": [
                {"name": n, "value": round(rng.uniform(1, 10), 2)}
                for n in rng.sample(["New York", "London", "Mumbai", "Istanbul", "Berlin", "Paris"], 3)
            ],
            "gender_age_distribution": [
                {"gender": g, "age_range": r, "value": round(rng.uniform(1, 20), 2)}
                for g in ("FEMALE", "MALE")
                for r in ("18-24", "25-34", "35-44")
            ],
            # the share of the audience judged real (0..1), as InsightIQ's profile analytics names it; left
            # out for some accounts (a platform without the estimate): the mapping sends it where present
            **(
                {"credibility_score": round(rng.uniform(0.45, 0.97), 2)}
                if rng.random() < CREDIBILITY_SHARE
                else {}
            ),
            "created_at": iso(self.ds.now - 30 * DAY),
            "updated_at": iso(self.ds.now - DAY),
        }

    # -- dated items -----------------------------------------------------------------------------------
    def item(self, name: str, i: int) -> dict:
        ds = self.ds
        col = ds.collections[name]
        a = ds.owner(name, i)
        c = int(ds.acc_creator[a])
        rng = self.rng(name, i)
        when = ds.epoch(name, i)
        appeared = ds.appeared(name, i)  # a late item: created in InsightIQ when it showed up
        created = min(when + 600, ds.now) if appeared is None else appeared
        common = {
            "id": self.codec.make(col.kind, i),
            "user": self.user_ref(c),
            "account": self.account_ref(a),
            "work_platform": platform_ref(int(ds.acc_platform[a])),
            "created_at": iso(created),
            "updated_at": iso(max(created, ds.now - rng.randrange(DAY))),
            "external_id": str(rng.randrange(10**15, 10**16)),
        }
        return {**common, **getattr(self, "_" + name)(rng, i, when, a)}

    def _contents(self, rng, i, when, a):
        fmt = rng.choice(list(FORMATS))
        views = rng.randrange(100, 10**6)
        return {
            "title": f"Post #{i}",
            "format": fmt,
            "type": rng.choice(FORMATS[fmt]),
            "url": f"https://www.example.com/p/{i}",
            "media_url": None,
            "duration": None,
            "description": f"Content item {i} #creator",
            "visibility": "PUBLIC",
            "thumbnail_url": None,
            "published_at": iso(when),
            "engagement": {
                "like_count": rng.randrange(views // 5 + 1),
                "dislike_count": None,
                "comment_count": rng.randrange(500),
                "impression_organic_count": None,
                "reach_organic_count": None,
                "save_count": rng.randrange(200),
                "view_count": views,
                "replay_count": None,
                "watch_time_in_hours": None,
                "share_count": rng.randrange(300),
            },
        }

    def _content_groups(self, rng, i, when, a):
        return {
            "title": f"Playlist #{i}",
            "format": "COLLECTION",
            "type": "PLAYLIST",
            "url": f"https://www.example.com/playlist/{i}",
            "description": None,
            "visibility": "PUBLIC",
            "published_at": iso(when),
            "item_count": rng.randrange(2, 30),
            "engagement": {"like_count": rng.randrange(1000), "view_count": rng.randrange(10**5)},
        }

    def _comments(self, rng, i, when, a):
        return {
            "text": rng.choice(["Love this!", "Great post", "Where is this?", "🔥🔥"]),
            "commenter_username": f"fan{rng.randrange(10**6)}",
            "like_count": rng.randrange(50),
            "reply_count": rng.randrange(5),
            "published_at": iso(when),
        }

    def _money(self, rng):
        return {"amount": round(rng.uniform(1, 2000), 2), "currency": rng.choice(CURRENCIES)}

    def _social_transactions(self, rng, i, when, a):
        return {
            **self._money(rng),
            "type": rng.choice(["AD_REVENUE", "SPONSORSHIP", "TIPS", "SUBSCRIPTION"]),
            "transaction_at": iso(when),
            "status": "COMPLETED",
        }

    def _social_payouts(self, rng, i, when, a):
        # a payout added by /_sandbox/mutate (PAYOUTS.ADDED) is paid out; the generated ones, and the past
        # of an account added by /_sandbox/accounts (appeared at its connection), are either
        appeared = self.ds.appeared("social_payouts", i)
        late = appeared is not None and appeared != self.ds.added.get(a)
        return {
            **self._money(rng),
            "status": "PAID" if late else rng.choice(["PAID", "PENDING"]),
            "payout_at": iso(when),
            "bank_details": None,
        }

    def _commerce_transactions(self, rng, i, when, a):
        return {
            **self._money(rng),
            "type": rng.choice(["SALE", "REFUND", "FEE"]),
            "transaction_at": iso(when),
            "status": "COMPLETED",
            "fee": round(rng.uniform(0, 5), 2),
        }

    def _commerce_payouts(self, rng, i, when, a):
        return {**self._money(rng), "status": "PAID", "payout_at": iso(when), "payout_interval": "WEEKLY"}

    def _commerce_balances(self, rng, i, when, a):
        return {**self._money(rng), "type": "AVAILABLE", "balance_at": iso(when)}
