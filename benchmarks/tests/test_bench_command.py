"""`manage.py bench <area>`: the areas, and the last line's contract on the cheapest one."""

import io
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from benchmarks.management.commands.bench import AREAS, bench_area

CONTRACT = re.compile(r"^(?P<area>[a-z-]+): .+, ratio [-\d.,]+x? vs .+$")


def test_an_unknown_area_lists_the_areas():
    with pytest.raises(CommandError) as raised:
        call_command("bench", "nope")
    assert all(area in str(raised.value) for area in AREAS)


@pytest.mark.parametrize("area", sorted(AREAS))
def test_every_area_has_its_function(area):
    assert callable(bench_area(area))


@pytest.mark.django_db
def test_bench_store_quick_ends_with_the_contract_line(analytics_store):
    out = io.StringIO()
    call_command("bench", "store", "--quick", stdout=out)
    last = out.getvalue().strip().splitlines()[-1]
    match = CONTRACT.match(last)
    assert match, last
    assert match["area"] == "store"


@pytest.mark.django_db
def test_bench_experiments_aa_quick_reports_both_engines():
    out = io.StringIO()
    call_command("bench", "experiments", "--aa", "--quick", stdout=out)
    lines = out.getvalue().strip().splitlines()
    match = CONTRACT.match(lines[-1])
    assert match and match["area"] == "experiments", lines[-1]
    assert "sequential false-positive rate" in lines[-1] and "Bayesian false-ship" in lines[-1]
    with pytest.raises(CommandError):
        call_command("bench", "store", "--aa")


@pytest.mark.slow
@pytest.mark.django_db
def test_bench_rollouts_product_part_catches_a_quality_fault_and_not_a_healthy_canary():
    from benchmarks.rollouts_product import product_detection

    out = io.StringIO()
    figures = product_detection(out, quick=True)
    assert figures["caught_minutes"] is not None and figures["caught_minutes"] < 30
    assert figures["error_rate_caught"] == 0  # error rate, latency and resources stay normal
    assert figures["false_alarms"] == 0
    assert "rolled back (2 failing looks in a row) after" in out.getvalue()
