"""Enrichment at capture: device type from the user agent, country from the IP, IP masking,
and the serving version from the mesh's `X-Served-By` header.

Both lookups are offline (ua-parser's bundled regexes, geoip2fast's bundled database) and
cached per process, because a batch usually repeats the same few agents and addresses.
"""

from __future__ import annotations

import ipaddress
import re
from functools import cache, lru_cache

BOT, MOBILE, TABLET, DESKTOP = "bot", "mobile", "tablet", "desktop"
_MOBILE_OS = {"iOS", "Android", "Windows Phone", "BlackBerry OS", "KaiOS", "Symbian OS", "Tizen"}
_DESKTOP_OS = {"Windows", "Mac OS X", "Linux", "Ubuntu", "Fedora", "Chrome OS", "FreeBSD"}
_BOT_HINTS = ("bot", "crawler", "spider", "slurp", "headless")


@lru_cache(maxsize=8192)
def device_type(user_agent: str) -> str | None:
    """`bot`, `tablet`, `mobile` or `desktop`; None when the agent says too little to tell."""
    if not user_agent:
        return None
    from ua_parser import parse

    result = parse(user_agent)
    device = result.device.family if result.device else ""
    os_family = result.os.family if result.os else ""
    lowered = user_agent.lower()
    if device == "Spider" or any(hint in lowered for hint in _BOT_HINTS):
        return BOT
    if "iPad" in device or "Tablet" in device or "tablet" in lowered:
        return TABLET
    if os_family == "Android":
        # Android tablets leave "Mobile" out of the agent (Google's guidance to browsers).
        return MOBILE if "mobile" in lowered else TABLET
    if os_family in _MOBILE_OS:
        return MOBILE
    if os_family in _DESKTOP_OS:
        return DESKTOP
    return None


@cache
def _geo():
    from pathlib import Path

    import geoip2fast

    # The package ships an IPv4-only and an IPv4+IPv6 file; the second answers both.
    data = Path(geoip2fast.__file__).with_name("geoip2fast-ipv6.dat.gz")
    return geoip2fast.GeoIP2Fast(geoip2fast_data_file=str(data), verbose=False)


@lru_cache(maxsize=65536)
def geo_country(ip: str) -> str | None:
    """ISO country code of a public address; None for private, reserved or unknown ones."""
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if not address.is_global:
        return None
    code = _geo().lookup(ip).country_code
    return code if code and len(code) == 2 and code.isalpha() else None


@lru_cache(maxsize=65536)
def mask_ip(ip: str) -> str:
    """IPv4 with the last octet zeroed, IPv6 cut to its /48 network; '' when not an address."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ""
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False).network_address)


SERVED_BY = re.compile(r"^[A-Za-z0-9_.:@/+-]{1,200}$")


def served_by(header: str | None) -> str:
    """The version an `X-Served-By` header names ('' when absent); ValueError when malformed."""
    value = (header or "").strip()
    if value and not SERVED_BY.match(value):
        raise ValueError(
            "at most 200 characters of letters, digits and _ . : @ / + - (e.g. video-renderer:v7)"
        )
    return value


def enriched(
    properties: dict,
    *,
    user_agent: str,
    ip: str,
    user_tier: str | None,
    release: str = "",
) -> dict | None:
    """`properties` plus the derivable enrichment keys the client did not send itself, as a
    new dict; None when there is nothing to add (the caller keeps the original). `release` is
    the version the mesh says served the request (X-Served-By)."""
    added = {}
    if release:
        added["release"] = release
    kind = device_type(user_agent)
    if kind is not None:
        added["device_type"] = kind
        added["is_mobile"] = kind in (MOBILE, TABLET)
    country = geo_country(ip)
    if country is not None:
        added["geo_country"] = country
    if user_tier:
        added["user_tier"] = user_tier
    added = {k: v for k, v in added.items() if k not in properties}
    return {**properties, **added} if added else None
