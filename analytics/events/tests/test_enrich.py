"""Enrichment at capture: device type from known user agents, country from public and private
IPs (offline database), IP masking, and what capture stores."""

import pytest

from analytics.events.enrich import device_type, geo_country, mask_ip
from analytics.events.services import events_capture, events_flush
from analytics.events.tests.conftest import DESKTOP, IPHONE, make_event

AGENTS = [
    (IPHONE, "mobile"),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Mobile Safari/537.36",
        "mobile",
    ),
    (
        "Mozilla/5.0 (iPad; CPU OS 15_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/15.0 Mobile/15E148 Safari/604.1",
        "tablet",
    ),
    (
        "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Safari/537.36",
        "tablet",
    ),
    (DESKTOP, "desktop"),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
        " Version/17.0 Safari/605.1.15",
        "desktop",
    ),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0", "desktop"),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "bot"),
    ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "bot"),
    ("curl/8.4.0", None),
    ("", None),
]


@pytest.mark.parametrize(("agent", "kind"), AGENTS)
def test_device_type_from_known_user_agents(agent, kind):
    assert device_type(agent) == kind


@pytest.mark.parametrize(
    ("ip", "country"),
    [
        ("8.8.8.8", "US"),
        ("81.2.69.160", "GB"),  # MaxMind's documented test address in the United Kingdom
        ("2a00:1450:4001::1", "DE"),
        ("10.1.2.3", None),
        ("192.168.0.10", None),
        ("172.16.5.4", None),
        ("127.0.0.1", None),
        ("::1", None),
        ("fd00::1", None),
        ("not an ip", None),
        ("", None),
    ],
)
def test_geo_country_for_public_and_private_addresses(ip, country):
    assert geo_country(ip) == country


@pytest.mark.parametrize(
    ("ip", "masked"),
    [
        ("81.2.69.160", "81.2.69.0"),
        ("10.0.0.255", "10.0.0.0"),
        ("2001:db8:1:2::5", "2001:db8:1::"),
        ("junk", ""),
    ],
)
def test_ip_is_masked(ip, masked):
    assert mask_ip(ip) == masked


@pytest.mark.django_db
def test_capture_enriches_and_masks(event_buffer, analytics_store):
    events_capture(
        events=[
            make_event(0, user_agent=IPHONE, ip="81.2.69.160"),
            make_event(1, properties={"device_type": "tv", "n": 1}),  # the client's value wins
            make_event(2, ip="10.0.0.7"),
        ],
        ip="8.8.8.8",
        user_agent=DESKTOP,
    )
    events_flush()
    rows = analytics_store.query(
        "SELECT JSONExtractInt(properties, 'n') AS n, device_type, is_mobile, country, ip "
        "FROM events ORDER BY n"
    )
    assert rows == [
        {"n": 0, "device_type": "mobile", "is_mobile": 1, "country": "GB", "ip": "81.2.69.0"},
        {"n": 1, "device_type": "tv", "is_mobile": 0, "country": "US", "ip": "8.8.8.0"},
        {"n": 2, "device_type": "desktop", "is_mobile": 0, "country": "", "ip": "10.0.0.0"},
    ]


@pytest.mark.django_db
def test_full_ip_is_kept_when_the_setting_allows(event_buffer, analytics_store, settings):
    settings.EVENTS_STORE_FULL_IP = True
    events_capture(events=[make_event(0, ip="81.2.69.160")])
    events_flush()
    assert analytics_store.query("SELECT ip FROM events") == [{"ip": "81.2.69.160"}]


@pytest.mark.django_db
def test_nothing_is_added_when_nothing_is_derivable(event_buffer, analytics_store):
    events_capture(events=[make_event(0, properties={})])
    events_flush()
    assert analytics_store.query("SELECT properties FROM events") == [{"properties": "{}"}]
