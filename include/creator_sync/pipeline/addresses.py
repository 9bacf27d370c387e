"""The city of a free-text address, sent only when the reading is confident.

InsightIQ's docs do not give the shape of `profiles.addresses`; its OpenAPI example is a list of {type,
address} whose address is free text, "520 North Avenue, CA, USA": a state where a city would be. The mapping's
`first_city` reads a structured `city` key first and this rule only where there is none.

The rule reads the comma parts from the right: a country (an ISO 3166-1 alpha-2 code, or a known name) and
then any region ("CA", "NSW 2000", "Illinois") or postcode part are set aside; the part before them is the
city when at least one such part was set aside (it anchors the city slot) and at least one part is left before
it (the street). When no region was set aside, the part set aside may follow a county or a province of a
country with no list ("Medellín, Antioquia, Colombia", "Guildford, Surrey, GU1 3AA"): the candidate is then
taken only when its own part holds the postcode ("75001 Paris, France") or the part before it is the street
line (a street word or a house number: "5 Station Road, Manchester, GB"). Nor is it taken after the locality's
postal line ("13001 Marseille, Bouches-du-Rhône, Provence-Alpes-Côte d'Azur": the postcode names the city, the
part after it is a county). The candidate loses a leading or trailing postcode ("10115 Berlin", "London SW1A
1AA") and a trailing " - SP" region ("São Paulo - SP"), and is refused when it still holds a digit, is a two-
or three-letter code, an abbreviation ("Jal."), a country, a street ("Main Street", "Rua Augusta"), a Japanese
or Korean ward or district ("Chiyoda-ku", "Gangnam-gu"), "district/province" ("Kadikoy/Istanbul"), holds a
bracket, a division's name ("Sangamon County", "Co. Cork", "Lagos State", "Metro Manila"), or a region name. A
region name that is also a city's ("New York", "São Paulo") is taken only when a region part follows it ("New
York, NY 10001"). So the vendor's example gives no city, and neither does any address the rule is not sure of:
`city_of` answers None, never a state, a postcode, a country or a street.

The region names are the first-level divisions of the federations whose addresses name them (US, Canada,
Australia, Brazil, India, Mexico, Germany, Austria, Switzerland, Japan, Spain, Italy, France) and the UK's
counties (every name ending in "shire" and a list of the others; the UK's nations count as countries); their
codes need no list: every two- or three-letter upper-case part is refused as a city. City states (Berlin,
Hamburg, Bremen, Vienna) are cities and are not in the lists.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

import phonenumbers

US = (
    "Alabama|Alaska|Arizona|Arkansas|California|Colorado|Connecticut|Delaware|Florida|Georgia|Hawaii|Idaho|"
    "Illinois|Indiana|Iowa|Kansas|Kentucky|Louisiana|Maine|Maryland|Massachusetts|Michigan|Minnesota|"
    "Mississippi|Missouri|Montana|Nebraska|Nevada|New Hampshire|New Jersey|New Mexico|New York|"
    "North Carolina|North Dakota|Ohio|Oklahoma|Oregon|Pennsylvania|Rhode Island|South Carolina|"
    "South Dakota|Tennessee|Texas|"
    "Utah|Vermont|Virginia|Washington|West Virginia|Wisconsin|Wyoming|District of Columbia|Puerto Rico|Guam"
)
CANADA = (
    "Alberta|British Columbia|Manitoba|New Brunswick|Newfoundland and Labrador|Nova Scotia|Ontario|"
    "Prince Edward Island|Quebec|Québec|Saskatchewan|Northwest Territories|Nunavut|Yukon"
)
AUSTRALIA = (
    "New South Wales|Victoria|Queensland|Western Australia|South Australia|Tasmania|"
    "Australian Capital Territory|Northern Territory"
)
BRAZIL = (
    "Acre|Alagoas|Amapá|Amazonas|Bahia|Ceará|Distrito Federal|Espírito Santo|Goiás|Maranhão|Mato Grosso|"
    "Mato Grosso do Sul|Minas Gerais|Pará|Paraíba|Paraná|Pernambuco|Piauí|Rio de Janeiro|"
    "Rio Grande do Norte|Rio Grande do Sul|Rondônia|Roraima|Santa Catarina|São Paulo|Sergipe|Tocantins"
)
INDIA = (
    "Andhra Pradesh|Arunachal Pradesh|Assam|Bihar|Chhattisgarh|Goa|Gujarat|Haryana|Himachal Pradesh|"
    "Jharkhand|Karnataka|Kerala|Madhya Pradesh|Maharashtra|Manipur|Meghalaya|Mizoram|Nagaland|Odisha|Punjab|"
    "Rajasthan|Sikkim|Tamil Nadu|Telangana|Tripura|Uttar Pradesh|Uttarakhand|West Bengal|Jammu and Kashmir|"
    "Ladakh|Puducherry|Chandigarh"
)
MEXICO = (
    "Aguascalientes|Baja California|Baja California Sur|Campeche|Chiapas|Chihuahua|Coahuila|Colima|Durango|"
    "Guanajuato|Guerrero|Hidalgo|Jalisco|Estado de México|México|Michoacán|Morelos|Nayarit|Nuevo León|Oaxaca|"
    "Puebla|Querétaro|Quintana Roo|San Luis Potosí|Sinaloa|Sonora|Tabasco|Tamaulipas|Tlaxcala|Veracruz|"
    "Yucatán|Zacatecas"
)
GERMAN = (
    "Baden-Württemberg|Bayern|Bavaria|Brandenburg|Hessen|Hesse|Mecklenburg-Vorpommern|Niedersachsen|"
    "Lower Saxony|Nordrhein-Westfalen|North Rhine-Westphalia|Rheinland-Pfalz|Rhineland-Palatinate|Saarland|"
    "Sachsen|Saxony|Sachsen-Anhalt|Saxony-Anhalt|Schleswig-Holstein|Thüringen|Thuringia|Niederösterreich|"
    "Oberösterreich|Steiermark|Styria|Tirol|Tyrol|Kärnten|Carinthia|Vorarlberg|Burgenland|Zürich|Bern|"
    "Aargau|Ticino|Vaud|Valais|Graubünden|Luzern|Genève|Geneva"
)
JAPAN = (
    "Hokkaido|Aomori|Iwate|Miyagi|Akita|Yamagata|Fukushima|Ibaraki|Tochigi|Gunma|Saitama|Chiba|Tokyo|"
    "Kanagawa|Niigata|Toyama|Ishikawa|Fukui|Yamanashi|Nagano|Gifu|Shizuoka|Aichi|Mie|Shiga|Kyoto|Osaka|Hyogo|"
    "Nara|Wakayama|Tottori|Shimane|Okayama|Hiroshima|Yamaguchi|Tokushima|Kagawa|Ehime|Kochi|Fukuoka|Saga|"
    "Nagasaki|Kumamoto|Oita|Miyazaki|Kagoshima|Okinawa"
)
EUROPE = (
    "Andalucía|Andalusia|Aragón|Asturias|Cantabria|Castilla y León|"
    "Castilla-La Mancha|Cataluña|Catalunya|Catalonia|Comunidad de Madrid|Comunidad Valenciana|Extremadura|"
    "Galicia|Islas Baleares|Canarias|La Rioja|Murcia|Navarra|País Vasco|Basque Country|Lombardia|Lombardy|"
    "Lazio|Piemonte|Piedmont|Veneto|Toscana|Tuscany|Emilia-Romagna|Campania|Sicilia|Sicily|Sardegna|Sardinia|"
    "Puglia|Calabria|Liguria|Île-de-France|Ile-de-France|Auvergne-Rhône-Alpes|Occitanie|Nouvelle-Aquitaine|"
    "Hauts-de-France|Grand Est|Bretagne|Brittany|Normandie|Normandy|Provence-Alpes-Côte d'Azur|"
    "Pays de la Loire"
)
# the UK's counties besides the "-shire" ones (any name ending in "shire" is a county)
UK_COUNTIES = (
    "Cornwall|Cumbria|Devon|Dorset|Durham|County Durham|Essex|Kent|Merseyside|Middlesex|Norfolk|"
    "Northumberland|Rutland|Somerset|Suffolk|Surrey|Sussex|East Sussex|West Sussex|Isle of Wight|"
    "Tyne and Wear|West Midlands|Greater Manchester|Greater London|East Riding of Yorkshire|"
    "North Yorkshire|South Yorkshire|West Yorkshire|Yorkshire|Fife|Highland|Glamorgan|Gwynedd|Powys|"
    "Antrim|Armagh|Down|Fermanagh|Londonderry|Tyrone"
)
# words that name a division of a country, in any country: "Sangamon County", "Co. Cork", "Lagos State",
# "Tel Aviv District", "Auckland Region", "Metro Manila", "Greater London", "DKI Jakarta"
DIVISION_WORDS = (
    "county co co. state province provincia region región district distrito prefecture oblast krai "
    "governorate department departement département departamento territory parish borough ward greater "
    "metro landkreis kreis dki daerah"
)
# region names that also name a city: a city only when a region part follows ("New York, NY 10001")
SAME_NAME_CITIES = frozenset(
    {"new york", "sao paulo", "rio de janeiro", "tokyo", "osaka", "kyoto", "mexico", "puebla", "quebec",
     "chihuahua", "durango", "oaxaca", "queretaro", "zacatecas", "campeche", "colima", "aguascalientes",
     "fukuoka", "hiroshima", "nagasaki", "chandigarh", "washington", "zurich", "bern", "luzern", "geneve",
     "geneva", "murcia", "nagano", "niigata", "sendai", "chiba", "saitama", "kumamoto", "kagoshima",
     "durham"}
)  # fmt: skip
COUNTRY_NAMES = (
    "USA|U.S.A.|U.S.|United States|United States of America|America|UK|U.K.|United Kingdom|Great Britain|"
    "Britain|England|Scotland|Wales|Northern Ireland|Germany|Deutschland|France|Spain|España|Italy|Italia|"
    "Brazil|Brasil|Japan|Nippon|India|Bharat|"
    "Mexico|México|Canada|Australia|Netherlands|The Netherlands|Nederland|Holland|Turkey|Türkiye|Turkiye|"
    "Austria|Österreich|Switzerland|Schweiz|Suisse|Belgium|Portugal|Ireland|Poland|Polska|Sweden|Norway|"
    "Denmark|Finland|Argentina|Chile|Colombia|Peru|China|South Korea|Korea|Singapore|Indonesia|Philippines|"
    "Thailand|Vietnam|Malaysia|New Zealand|South Africa|Nigeria|Egypt|Kenya|Israel|Saudi Arabia|"
    "United Arab Emirates|UAE|Russia|Ukraine|Greece|Czech Republic|Czechia|Romania|Hungary"
)
STREET_WORDS = (
    "street st st. avenue ave ave. av av. road rd rd. lane ln way drive dr dr. boulevard blvd blvd. court ct "
    "square sq highway hwy parkway pkwy terrace crescent close place pl suite ste apt apartment flat floor "
    "unit box building bldg strasse straße str str. weg platz allee gasse ring damm ufer rua avenida calle "
    "carrera via viale corso piazza rue chemin chome chōme po p.o. postfach"
)
# a Japanese ward or district ("Chiyoda-ku") or a Korean one ("Gangnam-gu", "Yeoksam-dong")
WARD = re.compile(r"-(ku|gun|cho|chō|machi|mura|son|gu|dong)$", re.IGNORECASE)
# a house number token of a street line ("1", "221B", "1600", "43-12", "2-3-1", "No:5"); postcodes of five
# or more digits are not
# a postcode of four to six digits ("13001", "01310-100", "1100-053"): the locality's line holds it
POSTCODE = re.compile(r"\d{4,6}(-\d{3,4})?")
HOUSE_NUMBER = re.compile(r"(no[.:]?)?\d{1,4}[a-z]?([-/]\d{1,4}[a-z]?)*", re.IGNORECASE)
# a token holding a digit: a postcode or a part of one ("94043", "94043-1351", "SW1A", "1AA", "01310-100")
POSTCODE_TOKEN = re.compile(r"(?=\S*\d)[A-Z0-9]{1,8}(-[A-Z0-9]{1,4})?", re.IGNORECASE)
CODE = re.compile(r"[A-Z]{2,3}|[A-Z]\.[A-Z]\.?")


def fold(text: str) -> str:
    """Lower case without accents and with single spaces: how names compare."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(plain.casefold().split())


def _names(*groups: str) -> frozenset[str]:
    return frozenset(fold(n) for group in groups for n in group.split("|") if n.strip())


@cache
def regions() -> frozenset[str]:
    return _names(US, CANADA, AUSTRALIA, BRAZIL, INDIA, MEXICO, GERMAN, JAPAN, EUROPE, UK_COUNTIES)


@cache
def division_words() -> frozenset[str]:
    return frozenset(fold(word) for word in DIVISION_WORDS.split())


def _is_region_name(folded: str) -> bool:
    return folded in regions() or folded.endswith("shire")


def _street_line(part: str) -> bool:
    """Whether a part reads as a street line: a street word ("Station Road") or a house number ("Váci utca
    1"), not a postcode of five or more digits."""
    return any(w in street_words() for w in fold(part).split()) or any(
        HOUSE_NUMBER.fullmatch(t) for t in part.split()
    )


@cache
def street_words() -> frozenset[str]:
    return frozenset(fold(word) for word in STREET_WORDS.split())


@cache
def countries() -> frozenset[str]:
    return _names(COUNTRY_NAMES) | {fold(code) for code in phonenumbers.SUPPORTED_REGIONS}


def _postal_line(part: str) -> bool:
    """Whether a part reads as the locality's postal line ("13001 Marseille", "03201 Elche"): a postcode of
    digits and no street word."""
    words = fold(part).split()
    return any(POSTCODE.fullmatch(t) for t in words) and not any(w in street_words() for w in words)


def _without_postcodes(part: str) -> str:
    """The part less its postcode-like tokens (each holding a digit: "94043", "SW1A", "1AA", "01310-100")."""
    return " ".join(t for t in part.split() if not POSTCODE_TOKEN.fullmatch(t))


def _is_country(part: str) -> bool:
    return fold(part) in countries()


def _region_or_postcode(part: str) -> str | None:
    """ "region" for a region with or without a postcode ("CA", "NSW 2000", "Illinois"), "postcode" for a
    postcode alone ("62701", "01310-100"), None for anything else."""
    rest = _without_postcodes(part)
    if not rest:
        return "postcode"
    if CODE.fullmatch(rest) or _is_region_name(fold(rest)):
        return "region"
    return None


def _candidate(part: str) -> tuple[str, bool]:
    """The city candidate of a part, less a trailing region ("São Paulo - SP", "Milano (MI)", "Montréal
    (Québec)", "New York NY") and leading or trailing postcode tokens, and whether a region was removed."""
    head, sep, tail = part.rpartition(" - ")
    region = bool(sep) and _region_or_postcode(tail) == "region"
    tokens = (head if region else part).split()
    if tokens and POSTCODE_TOKEN.fullmatch(tokens[0]):
        tokens.pop(0)
        if len(tokens) > 1 and re.fullmatch(r"[A-Z]{2}", tokens[0]):  # a Dutch postcode's letters: "1012 LG"
            tokens.pop(0)
    while len(tokens) > 1 and (
        POSTCODE_TOKEN.fullmatch(tokens[-1])
        or CODE.fullmatch(tokens[-1].strip("()"))
        or (re.fullmatch(r"\(.+\)", tokens[-1]) and _region_or_postcode(tokens[-1][1:-1]) == "region")
        or fold(tokens[-1]) == "cedex"  # a French delivery office ("75008 Paris Cedex 08")
    ):
        region = region or not (POSTCODE_TOKEN.fullmatch(tokens[-1]) or fold(tokens[-1]) == "cedex")
        tokens.pop()
    if len(tokens) == 1 and tokens[0].endswith("."):  # an abbreviation ("Jal.", "Calif."): a region's
        return "", region
    return " ".join(tokens).strip(" .-"), region


def _plausible(city: str, region_follows: bool) -> bool:
    if not 2 <= len(city) <= 50 or any(c.isdigit() for c in city) or not any(c.isalpha() for c in city):
        return False
    if CODE.fullmatch(city) or _is_country(city) or WARD.search(city) or any(c in city for c in "/()"):
        return False
    folded = fold(city)
    if any(word in street_words() or word in division_words() for word in folded.split()):
        return False
    return not _is_region_name(folded) or (region_follows and folded in SAME_NAME_CITIES)


def city_of(address: object) -> str | None:
    """The city of a free-text address when the rule is confident (see the module's doc), else None."""
    if not isinstance(address, str):
        return None
    parts = [p.strip() for p in re.split(r"[,;\n]", address) if p.strip()]
    anchored = region_follows = False
    if len(parts) > 1 and _is_country(parts[-1]):
        parts.pop()
        anchored = True
    # postcode parts and at most one region part: the part before a region is the city's slot, whatever
    # it holds ("New York, NY 10001")
    while (
        len(parts) > 1
        and (kind := _region_or_postcode(parts[-1]))
        and not (region_follows and kind == "region")
    ):
        parts.pop()
        anchored, region_follows = True, region_follows or kind == "region"
    if len(parts) < 2:
        return None
    city, dashed_region = _candidate(parts[-1])
    if not (anchored or dashed_region):
        return None
    # with no region set aside, the slot before a country or a postcode may hold a county or a province
    # ("Calle 10, Medellín, Antioquia, Colombia"): the candidate is the city only when its own part holds
    # the postcode ("75001 Paris") or the part before it is the street line
    postcoded = any(POSTCODE_TOKEN.fullmatch(t) for t in parts[-1].split())
    if not (region_follows or dashed_region or postcoded or _street_line(parts[-2])):
        return None
    if not postcoded and _postal_line(parts[-2]):  # "13001 Marseille, Bouches-du-Rhône, PACA": a county
        return None
    city = re.sub(r"-shi$", "", city, flags=re.IGNORECASE)  # a Japanese city ("Yokohama-shi")
    return city if _plausible(city, region_follows or dashed_region) else None
