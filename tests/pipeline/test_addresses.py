"""The city of an address (creator_sync.pipeline.addresses and the mapping's `first_city`): a structured
`city` key wins; a free-text address gives a city only where the conservative rule is sure of it, and never
a state, a postcode, a country or a street."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from creator_sync.pipeline import addresses
from creator_sync.pipeline.addresses import city_of, fold
from creator_sync.pipeline.reducers import address_city, first_city

SHAPES = [
    # US
    ("520 North Avenue, CA, USA", None),  # the vendor's example: a state in the city's slot
    ("1600 Amphitheatre Parkway, Mountain View, CA 94043, USA", "Mountain View"),
    ("350 5th Ave, New York, NY 10118, USA", "New York"),
    ("123 Main St, Springfield, IL 62701", "Springfield"),
    ("1 Main St, Springfield, Illinois, USA", "Springfield"),
    ("12 Main Street, Texas, USA", None),
    ("PO Box 123, 90210, USA", None),
    ("1 Infinite Loop, Cupertino, CA 95014-2083, United States", "Cupertino"),
    # UK
    ("10 Downing Street, London SW1A 2AA, UK", "London"),
    ("221B Baker Street, London NW1 6XE, United Kingdom", "London"),
    ("Flat 2, 5 Station Road, Manchester, GB", "Manchester"),
    ("12 Main Street, London", None),  # nothing after the candidate anchors the city's slot
    ("Flat 3, Rose Cottage", None),
    ("10 High Street, England, UK", None),
    # DE, AT, CH
    ("Unter den Linden 77, 10117 Berlin, Germany", "Berlin"),
    ("Marienplatz 8, 80331 München, Deutschland", "München"),
    ("Hauptstraße 5, Bayern, Germany", None),
    ("Stephansplatz 1, 1010 Wien, Österreich", "Wien"),
    # BR
    ("Av. Paulista 1000, São Paulo - SP, 01310-100, Brazil", "São Paulo"),
    ("Rua Augusta 10, Rio de Janeiro - RJ, 20000-000, Brasil", "Rio de Janeiro"),
    ("Rua Augusta 10, São Paulo, BR", None),  # a state's name too, and no region after it
    ("Rua Augusta 10, SP, Brasil", None),
    # JP
    ("1-1 Marunouchi, Chiyoda-ku, Tokyo 100-0001, Japan", None),  # a ward, then a prefecture
    ("2-3-1 Minatomirai, Nishi-ku, Yokohama-shi, Kanagawa 220-0012, Japan", "Yokohama"),
    ("Shibuya, Tokyo, Japan", None),
    ("〒100-0001 東京都千代田区千代田1-1", None),
    # elsewhere
    ("Bandra West, Mumbai, Maharashtra 400050, India", "Mumbai"),
    ("Calle de Alcalá 50, 28014 Madrid, España", "Madrid"),
    ("Via Roma 1, 20121 Milano (MI), Italy", "Milano"),
    ("1 Yonge St, Toronto, ON M5E 1W7, Canada", "Toronto"),
    ("8 Rue de Rivoli, 75004 Paris, France", "Paris"),
    ("Damrak 1, 1012 LG Amsterdam, Netherlands", "Amsterdam"),
    ("1 George St, Sydney NSW 2000, Australia", "Sydney"),
    ("1 George St, NSW 2000, Australia", None),
    ("Istiklal Caddesi 5, Istanbul, TR", "Istanbul"),
    # not addresses
    ("", None),
    ("USA", None),
    ("CA, USA", None),
    ("94043", None),
]


@pytest.mark.parametrize(("text", "city"), SHAPES)
def test_the_rule_on_real_world_shapes(text, city):
    assert city_of(text) == city


def test_non_text_is_no_address():
    assert city_of(None) is None and city_of(12) is None and city_of({"address": "x"}) is None


def test_a_city_key_wins_then_the_first_confident_free_text():
    keyed = [{"type": "HOME", "address": "1 Main St, Springfield, IL 62701"}, {"city": " Leeds "}]
    assert address_city(keyed) == "Leeds"
    free = [
        {"address": "520 North Avenue, CA, USA"},
        {"address": "Unter den Linden 77, 10117 Berlin, Germany"},
    ]
    assert address_city(free) == "Berlin"  # the first address the rule is sure of
    assert address_city(json.dumps(free)) == "Berlin"  # the column as JSON text
    assert address_city("Unter den Linden 77, 10117 Berlin, Germany") == "Berlin"  # one address as text
    assert address_city(["10 Downing Street, London SW1A 2AA, UK"]) == "London"
    assert address_city([{"address": "520 North Avenue, CA, USA"}]) is None
    assert address_city([{"city": "  "}, {"address": "12 Main Street, London"}]) is None
    values = pd.Series([json.dumps(keyed), json.dumps(free), "[]", None])
    cities = first_city(values, None)
    assert cities[:2].tolist() == ["Leeds", "Berlin"] and cities[2:].isna().all()


# -- the property: whatever the shape, never a region, a postcode, a country or a street ---------------
REGIONS = sorted(n for n in addresses.regions() if n not in addresses.SAME_NAME_CITIES)
COUNTRIES = ["USA", "UK", "Germany", "Brasil", "Japan", "US", "GB", "DE", "BR", "JP", "IN", "CA", "AU"]
CODES = ["CA", "NY", "TX", "ON", "NSW", "SP", "RJ", "MH", "JAL", "BY", "MI"]
words = st.text(alphabet="abcdefghijklmnopqrstuvwxyzäöüéã", min_size=3, max_size=10).map(str.title)
postcode = st.one_of(
    st.from_regex(r"[0-9]{5}(-[0-9]{4})?", fullmatch=True),
    st.from_regex(r"[0-9]{3}-[0-9]{4}", fullmatch=True),
    st.from_regex(r"[0-9]{5}-[0-9]{3}", fullmatch=True),
    st.from_regex(r"[A-Z]{1,2}[0-9][A-Z0-9]? [0-9][A-Z]{2}", fullmatch=True),
)
region = st.one_of(st.sampled_from(REGIONS).map(str.title), st.sampled_from(CODES))
street = st.builds("{} {} {}".format, st.integers(1, 999), words, st.sampled_from(["Street", "Ave", "Road"]))
noise = st.one_of(region, postcode, st.sampled_from(COUNTRIES), street, words)


def _forbidden(value: str) -> bool:
    folded = fold(value)
    return (
        folded in {fold(r) for r in REGIONS}
        or value in CODES
        or fold(value) in {fold(c) for c in COUNTRIES}
        or any(ch.isdigit() for ch in value)
        or any(w in addresses.street_words() for w in folded.split())
    )


@settings(max_examples=400, deadline=None)
@given(
    st.lists(noise, min_size=1, max_size=5),
    st.sampled_from([", ", ",", " , ", "; "]),
)
def test_the_rule_never_reads_a_region_postcode_country_or_street_as_a_city(parts, comma):
    city = city_of(comma.join(parts))
    assert city is None or not _forbidden(city), (parts, city)


@settings(max_examples=200, deadline=None)
@given(street, region, st.one_of(st.none(), postcode), st.sampled_from(COUNTRIES))
def test_a_region_in_the_citys_slot_gives_no_city(street_part, region_part, post, country):
    middle = region_part if post is None else f"{region_part} {post}"
    assert city_of(f"{street_part}, {middle}, {country}") is None


@settings(max_examples=200, deadline=None)
@given(street, words, st.sampled_from(CODES), postcode, st.sampled_from(COUNTRIES))
def test_street_city_region_postcode_country_gives_the_city(street_part, city, code, post, country):
    assert city_of(f"{street_part}, {city}, {code} {post}, {country}") == city


def test_control_without_the_region_names_a_state_passes_as_a_city(monkeypatch):
    """The guard switched off: with no region names to refuse, a state in the city's slot is read as the
    city, and the property's check flags it."""
    assert city_of("12 Main Street, Texas, USA") is None
    monkeypatch.setattr(addresses, "regions", frozenset)
    city = city_of("12 Main Street, Texas, USA")
    assert city == "Texas" and _forbidden(city)


# -- counties, provinces and other countries' divisions in the city's slot ------------------------------
WORLD_SHAPES = [
    ("12 High St, Guildford, Surrey, GU1 3AA, UK", "Guildford"),  # a UK county, then the postcode
    ("Oak Cottage, Little Snoring, Norfolk, England", "Little Snoring"),
    ("1 Abbey Rd, Reading, Berkshire, RG1 3AA", "Reading"),
    ("221B Baker St, Marylebone, London, England", None),  # a district or the city: not sure
    ("1 Main St, Springfield, Sangamon County, IL 62701", None),  # a US county
    ("Main St, Mallow, Co. Cork, P51 X2Y3, Ireland", None),  # an Irish county
    ("Calle 5, Col. Centro, 44100 Guadalajara, Jal., México", None),  # an abbreviated state
    ("123 Teheran-ro, Gangnam-gu, 06234, South Korea", None),  # a Korean district
    ("Bağdat Cad. No:5, 34710 Kadıköy/İstanbul, Turkey", None),  # noqa: RUF001  # district/province
    ("123 Rizal St, Makati City, Metro Manila 1203, Philippines", None),
    ("Calle 10 # 43-12, Medellín, Antioquia, Colombia", None),  # provinces of countries with no list
    ("Damrak 1, Amsterdam, Noord-Holland, Netherlands", None),
    ("12 Long St, Cape Town, Western Cape, South Africa", None),
    ("5 Allen Ave, Ikeja, Lagos State, Nigeria", None),
    ("Calle 7, La Plata, Buenos Aires, Argentina", None),
    ("Calle Mayor 1, Vilanova i la Geltrú, Barcelona, Spain", None),  # a province named as its capital
    ("88 Tianhe Rd, Guangzhou, Guangdong, China", None),
    ("ul. Floriańska 1, Kraków, Małopolskie, Poland", None),
    ("Via Roma 1, Monza, Monza e Brianza, Italy", None),
    ("1 Queen St, Auckland, Auckland Region, New Zealand", None),
    ("2 Rothschild Blvd, Tel Aviv-Yafo, Tel Aviv District, Israel", None),
    ("PO Box 123, Nairobi, Nairobi County, Kenya", None),
    ("Lot 1, Jalan Ampang, 50450 Kuala Lumpur, Wilayah Persekutuan, Malaysia", None),
    ("10 Downing St, Westminster, London, Greater London, SW1A 2AA", "London"),
    ("10 Rue de Rivoli, 75001 Paris Cedex 01, France", "Paris"),  # a delivery office's CEDEX
    ("King Fahd Rd, Olaya, Riyadh 12211, Saudi Arabia", "Riyadh"),
    ("Str. Lipscani 1, Sector 3, București, Romania", "București"),
    ("Váci utca 1, Budapest, 1052, Hungary", "Budapest"),
    ("Karl Johans gate 1, 0154 Oslo, Norway", "Oslo"),
    ("Rue du Lac 1, Lausanne, VD, Switzerland", "Lausanne"),
    # a county between the locality's postal line and the region
    ("5 Rue X, 13001 Marseille, Bouches-du-Rhône, Provence-Alpes-Côte d'Azur, France", None),
    ("Calle Mayor 2, 03201 Elche, Alicante, Comunidad Valenciana, Spain", None),
    ("Via Roma 1, 20900 Monza, Monza e Brianza, Lombardia, Italia", None),
    ("Hauptstr. 5, 71634 Ludwigsburg, Landkreis Ludwigsburg, Baden-Württemberg, Germany", None),
    ("Calle 1, 41001 Sevilla, Andalucía, España", "Sevilla"),
    ("Kirchweg 3, 8001 Zürich, ZH, Switzerland", "Zürich"),
    ("200 Rue Saint-Jacques, Montréal (Québec) H2Y 1L9, Canada", "Montréal"),  # the region in brackets
    ("1 Spring St, Halifax (Nova Scotia) B3H 1A1, Canada", None),
    ("Jl. Thamrin No. 1, Jakarta Pusat, DKI Jakarta 10310, Indonesia", None),  # a special region
]


@pytest.mark.parametrize(("text", "city"), WORLD_SHAPES)
def test_the_world_s_address_shapes(text, city):
    assert city_of(text) == city


DIVISIONS = [
    "Antioquia", "Noord-Holland", "Western Cape", "Guangdong", "Małopolskie", "Buenos Aires", "Barcelona",
    "Monza e Brianza", "Bavaria", "Surrey", "Norfolk", "Hertfordshire", "Gyeonggi-do", "Sangamon County",
    "Co. Cork", "Lagos State", "Nairobi County", "Auckland Region", "Metro Manila", "Tel Aviv District",
    "Jal.", "Calif.", "Pest", "Île-de-France", "Landkreis Ludwigsburg",
]  # fmt: skip
town = st.sampled_from(["Medellín", "Guildford", "Ikeja", "Haarlem", "La Plata", "Springfield", "Mallow"])


@settings(max_examples=200, deadline=None)
@given(
    street,
    town,
    st.sampled_from(DIVISIONS),
    st.one_of(st.none(), postcode),
    st.one_of(st.none(), st.sampled_from(["Colombia", "UK", "Netherlands", "USA", "Kenya", "Spain", "IE"])),
)
def test_a_division_after_the_town_is_never_the_city(street_part, town_part, division, post, country):
    """Street, town, a country's division (a county, province, state of any country), then a postcode
    and a country or not: the division is never the answer (the town is, or no city)."""
    parts = [street_part, town_part, division, post, country]
    city = city_of(", ".join(p for p in parts if p))
    assert city in (None, town_part), (parts, city)


def test_control_without_the_street_line_check_a_province_passes_as_a_city(monkeypatch):
    """The guard switched off: with any part before the candidate taken as the street line, Colombia's
    province is read as the city."""
    text = "Calle 10 # 43-12, Medellín, Antioquia, Colombia"
    assert city_of(text) is None
    monkeypatch.setattr(addresses, "_street_line", lambda part: True)
    assert city_of(text) == "Antioquia"


def test_control_without_the_division_words_a_county_passes_as_a_city(monkeypatch):
    text = "1 Main St, Springfield, Sangamon County, IL 62701"
    assert city_of(text) is None
    monkeypatch.setattr(addresses, "division_words", frozenset)
    assert city_of(text) == "Sangamon County"


def test_control_without_the_postal_line_check_a_county_passes_as_a_city(monkeypatch):
    text = "5 Rue X, 13001 Marseille, Bouches-du-Rhône, Provence-Alpes-Côte d'Azur, France"
    assert city_of(text) is None
    monkeypatch.setattr(addresses, "_postal_line", lambda part: False)
    assert city_of(text) == "Bouches-du-Rhône"
