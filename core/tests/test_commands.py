"""The commands README promises: seed_demo (idempotent), bench (areas, last line), processes."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from core.models import ApiKey
from core.processes import process_commands
from core.queues import Queue


@pytest.mark.django_db
def test_seed_demo_is_idempotent_and_creates_demo_logins():
    from core.demo import DEMO_PASSWORD

    call_command("seed_demo", stdout=io.StringIO())
    first = (get_user_model().objects.count(), ApiKey.objects.count())
    call_command("seed_demo", stdout=io.StringIO())
    assert (get_user_model().objects.count(), ApiKey.objects.count()) == first
    for username, role in (("admin", "admin"), ("engineer", "engineer"), ("pm", "product")):
        user = get_user_model().objects.get(username=username)
        assert user.check_password(DEMO_PASSWORD)
        assert user.groups.filter(name=role).exists()


@pytest.mark.django_db
def test_demo_api_keys_are_stable_across_runs_one_of_each_kind():
    from core.demo import demo_api_key

    for kind in ("publishable", "secret"):
        raw = demo_api_key(kind)
        assert demo_api_key(kind) == raw
        assert raw.startswith({"publishable": "b2v_pk_", "secret": "b2v_sk_"}[kind])
        assert ApiKey.objects.get(key_hash=ApiKey.hash_key(raw)).kind == kind
    assert ApiKey.objects.filter(name__startswith="demo-").count() == 2


@pytest.mark.django_db
def test_seed_demo_prints_one_labelled_key_of_each_kind():
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    lines = out.getvalue().splitlines()
    publishable = [line for line in lines if line.startswith("demo publishable key")]
    secret = [line for line in lines if line.startswith("demo secret key")]
    assert len(publishable) == 1 and len(secret) == 1
    assert publishable[0].rsplit(" ", 1)[1].startswith("b2v_pk_")
    assert secret[0].rsplit(" ", 1)[1].startswith("b2v_sk_")


def test_bench_refuses_unknown_area_listing_known_ones():
    with pytest.raises(CommandError, match=r"known areas: .*store"):
        call_command("bench", "no-such-area")


@pytest.mark.django_db  # bench brings the database schema up to date first
def test_bench_store_ends_with_the_figure_line():
    out = io.StringIO()
    call_command("bench", "store", "--quick", stdout=out)
    last = out.getvalue().strip().splitlines()[-1]
    assert last.startswith("store: ") and ", ratio " in last and " vs " in last


def test_processes_cover_web_worker_beat_and_every_queue():
    commands = process_commands(host="127.0.0.1", port=8000, python="python")
    assert set(commands) >= {"web", "worker", "beat"}
    assert "config.asgi:application" in commands["web"]
    queues = commands["worker"][commands["worker"].index("-Q") + 1].split(",")
    assert set(queues) == {q.value for q in Queue}
