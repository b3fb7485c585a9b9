"""The harness helpers every benchmark shares."""

import socket
import statistics
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.harness import TimedCalls, free_port, median_seconds, percentile, time_calls

values = st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=1, max_size=200)


@given(values, st.floats(min_value=0, max_value=100))
def test_percentile_is_numpys_linear_percentile(sample, q):
    assert percentile(sample, q) == pytest.approx(np.percentile(sample, q), abs=1e-6)


@given(values)
def test_the_50th_percentile_is_the_median(sample):
    assert percentile(sample, 50) == pytest.approx(statistics.median(sample), abs=1e-6)


def test_percentile_needs_values_and_a_percentage():
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_time_calls_times_each_call():
    calls = []
    times = time_calls(lambda: calls.append(time.sleep(0.001)), 5)
    assert len(calls) == len(times) == 5
    assert all(t >= 0.001 for t in times)
    assert median_seconds(lambda: time.sleep(0.001), 3) >= 0.001


def test_free_port_is_free():
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # nothing else holds it
        sock.listen()


def test_timed_calls_adds_up_the_wrapped_objects_calls():
    class Backend:
        name = "backend"

        def slow(self, seconds):
            time.sleep(seconds)
            return seconds

    timed = TimedCalls(Backend())
    assert timed.name == "backend"
    assert timed.slow(0.01) == 0.01
    assert timed.slow(0.01) == 0.01
    assert 0.02 <= timed.seconds < 1
