"""The outbound guard against a loopback receiver (testing/webhooks.py). No public host or
cluster DNS exists on this machine: where a test needs a name to resolve to a given address
it replaces `socket.getaddrinfo` and says so."""

import contextlib
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import outbound
from testing.webhooks import WebhookReceiver


@pytest.fixture
def receiver(settings):
    settings.OUTBOUND_ALLOW_LOOPBACK = True
    receiver = WebhookReceiver(slow_seconds=1.0)
    yield receiver
    receiver.close()


def fake_dns(monkeypatch, answers: dict[str, list[str]]):
    """Stands in for DNS (none here): names resolve to the given addresses."""
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in answers:
            family = {True: socket.AF_INET6, False: socket.AF_INET}
            return [(family[":" in a], socket.SOCK_STREAM, 6, "", (a, port)) for a in answers[host]]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.mark.parametrize(
    "url,problem",
    [
        ("http://push.example.com/x", "only https"),
        ("ftp://push.example.com/x", "only https"),
        ("https://user:pw@push.example.com/x", "credentials"),
        ("https:///x", "no host"),
        ("https://push.example.com:99999/x", "not a URL"),
        ("https://" + "a" * 2050, "1 to 2048"),
    ],
)
def test_malformed_or_plain_http_urls_are_refused(url, problem):
    with pytest.raises(outbound.OutboundRefused, match=problem):
        outbound.check_url(url)


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.5",
        "169.254.169.254",
        "127.0.0.1",
        "192.168.1.1",
        "100.64.0.1",
        "::1",
        "fd00::1",
        "::ffff:10.0.0.1",
        "224.0.0.1",
        "0.0.0.0",
    ],
)
def test_private_link_local_and_loopback_addresses_are_refused(address):
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(outbound.OutboundRefused, match="non-public address"):
        outbound.post(f"https://{host}/")


def test_a_cluster_name_resolving_inside_the_cluster_is_refused(monkeypatch):
    fake_dns(monkeypatch, {"kubernetes.default.svc": ["10.96.0.1"]})
    with pytest.raises(outbound.OutboundRefused, match=r"kubernetes\.default\.svc resolves to"):
        outbound.post("https://kubernetes.default.svc/api")


def test_one_private_answer_among_public_ones_is_enough_to_refuse(monkeypatch):
    fake_dns(monkeypatch, {"mixed.example": ["93.184.216.34", "10.1.2.3"]})
    with pytest.raises(outbound.OutboundRefused, match=r"10\.1\.2\.3"):
        outbound.post("https://mixed.example/")


def test_an_operator_may_allow_a_private_host(monkeypatch, settings):
    settings.OUTBOUND_PRIVATE_HOSTS = ["*.internal"]
    fake_dns(monkeypatch, {"loadtester.internal": ["10.1.2.3"]})
    assert outbound.resolve("loadtester.internal", 443) == "10.1.2.3"


def test_allow_list_takes_exact_names_and_wildcards():
    allowed = ["fcm.googleapis.com", "*.push.apple.com"]
    outbound.check_url("https://fcm.googleapis.com/fcm/send/x", allowed_hosts=allowed)
    outbound.check_url("https://api.push.apple.com/3/device/x", allowed_hosts=allowed)
    with pytest.raises(outbound.OutboundRefused, match="not one of the allowed hosts"):
        outbound.check_url("https://evil.example/fcm.googleapis.com", allowed_hosts=allowed)


def test_redirects_are_returned_not_followed(receiver):
    response = outbound.post(f"{receiver.url}/redirect", json={})
    assert response.status == 302 and not response.ok
    assert receiver.bodies("/ok") == []


def test_answers_are_bounded_and_sanitized(receiver, monkeypatch):
    monkeypatch.setattr(
        receiver, "_answer", lambda *a: (500, "line one\r\n\x1b[31mred\x00" + "x" * 5000, {})
    )
    response = outbound.post(f"{receiver.url}/ok", json={}, max_body=1000)
    assert response.status == 500
    assert len(response.body) == 1000
    assert response.reason.startswith("line one [31mred x")
    assert len(response.reason) == outbound.MAX_REASON_CHARS
    assert all(ord(c) >= 32 for c in response.reason)


def test_a_slow_answer_is_no_answer(receiver):
    with pytest.raises(outbound.OutboundError, match=r"no answer within 0\.2 s from 127\.0\.0\.1"):
        outbound.post(f"{receiver.url}/slow", json={}, timeout=0.2)


def test_the_connection_goes_to_the_checked_address_with_the_name_as_host(receiver, monkeypatch):
    fake_dns(monkeypatch, {"localhost": ["127.0.0.1"]})
    response = outbound.post(f"http://localhost:{receiver.port}/ok", json={"a": 1})
    assert response.ok
    (call,) = receiver.calls
    assert call["headers"]["Host"] == f"localhost:{receiver.port}" and call["body"] == {"a": 1}


def test_connection_refused_is_an_error_that_may_pass(settings):
    settings.OUTBOUND_ALLOW_LOOPBACK = True
    from testing.servers import free_port

    with pytest.raises(outbound.OutboundError) as err:
        outbound.post(f"http://127.0.0.1:{free_port()}/", json={})
    assert not isinstance(err.value, outbound.OutboundRefused)


@settings(max_examples=300, deadline=None)
@given(url=st.one_of(st.text(max_size=60), st.from_regex(r"\Ahttps?://[^/\s]{0,20}/.{0,10}\Z")))
def test_any_text_is_allowed_or_refused_never_a_crash(url):
    with contextlib.suppress(outbound.OutboundRefused):
        outbound.check_url(url)
