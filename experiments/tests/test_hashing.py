"""Assignment hashing against GrowthBook's published SDK cases, and across processes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.hashing import bucket_ranges, choose_variation, gb_hash, in_namespace

CASES = json.loads((Path(__file__).parent / "data" / "growthbook_cases.json").read_text())


@pytest.mark.parametrize(("seed", "value", "version", "expected"), CASES["hash"])
def test_hash_matches_growthbook(seed, value, version, expected):
    assert gb_hash(seed, value, version) == expected


@pytest.mark.parametrize(("name", "args", "expected"), CASES["getBucketRange"])
def test_bucket_ranges_match_growthbook(name, args, expected):
    ranges = bucket_ranges(*args)
    flat = [x for r in ranges for x in r]
    assert flat == pytest.approx([x for r in expected for x in r], abs=1e-9), name


@pytest.mark.parametrize(("name", "n", "ranges", "expected"), CASES["chooseVariation"])
def test_choose_variation_matches_growthbook(name, n, ranges, expected):
    assert choose_variation(n, [tuple(r) for r in ranges]) == expected, name


@pytest.mark.parametrize(("name", "user_id", "namespace", "expected"), CASES["inNamespace"])
def test_namespace_matches_growthbook(name, user_id, namespace, expected):
    assert in_namespace(user_id, tuple(namespace)) is expected, name


SCRIPT = """
import sys
from experiments.hashing import bucket_ranges, choose_variation, gb_hash
ranges = bucket_ranges(3, 0.9, [0.2, 0.3, 0.5])
print(",".join(str(choose_variation(gb_hash("seed-x", f"user-{i}"), ranges)) for i in range(2000)))
"""


def test_assignment_identical_in_separate_processes():
    """Two interpreters with different hash salts give every user the same variant."""
    outputs = []
    for salt in ("1", "987654"):
        env = {**os.environ, "PYTHONHASHSEED": salt}
        out = subprocess.run(
            [sys.executable, "-c", SCRIPT],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parents[2],
        )
        outputs.append(out.stdout.strip())
    assert outputs[0] == outputs[1]
    ranges = bucket_ranges(3, 0.9, [0.2, 0.3, 0.5])
    here = ",".join(
        str(choose_variation(gb_hash("seed-x", f"user-{i}"), ranges)) for i in range(2000)
    )
    assert outputs[0] == here


def test_split_follows_weights_and_coverage():
    ranges = bucket_ranges(2, 0.5, [0.2, 0.8])
    picks = [choose_variation(gb_hash("split", f"u{i}"), ranges) for i in range(20000)]
    assert picks.count(0) / 20000 == pytest.approx(0.1, abs=0.01)
    assert picks.count(1) / 20000 == pytest.approx(0.4, abs=0.015)
    assert picks.count(-1) / 20000 == pytest.approx(0.5, abs=0.015)
