"""Runs GrowthBook's gbstats on sufficient statistics read as JSON from stdin and prints its
results as JSON: the oracle experiments/stats.py is held to. It runs under var/gbstats's
interpreter (gbstats pins numpy<2 and pandas<2), so it imports nothing from the project.

Input: a list of cases {"engine": "frequentist"|"sequential"|"bayesian", "control": stat,
"treatment": stat, "alpha", "tuning"?, "prior_mean"?, "prior_stddev"?, "proper"?,
"inverse"?}; a stat is {"type": "proportion", "n", "sum"}, {"type": "mean", "n", "sum",
"sum_squares"}, {"type": "ratio", "n", "numerator": stat, "denominator": stat,
"sum_of_products"}, {"type": "cuped", "n", "post": stat, "pre": stat, "sum_of_products"},
{"type": "quantile", "n", "n_star", "nu", "quantile_hat", "quantile_lower", "quantile_upper"}
or {"type": "quantile_clustered", the same and "main_sum", "main_sum_squares",
"denominator_sum", "denominator_sum_squares", "main_denominator_sum_product", "n_clusters"}.
Output: per case {"lift", "ci", "p_value"} or {"lift", "ci", "chance_to_win", "risk"}
(risk of shipping the variation), null where gbstats reports an error.
"""

import json
import sys

from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig, GaussianPrior
from gbstats.frequentist.tests import (
    FrequentistConfig,
    SequentialConfig,
    SequentialTwoSidedTTest,
    TwoSidedTTest,
)
from gbstats.models.statistics import (
    ProportionStatistic,
    QuantileClusteredStatistic,
    QuantileStatistic,
    RatioStatistic,
    RegressionAdjustedStatistic,
    SampleMeanStatistic,
)


def statistic(s):
    if s["type"] == "proportion":
        return ProportionStatistic(n=s["n"], sum=s["sum"])
    if s["type"] == "mean":
        return SampleMeanStatistic(n=s["n"], sum=s["sum"], sum_squares=s["sum_squares"])
    if s["type"] == "ratio":
        return RatioStatistic(
            n=s["n"],
            m_statistic=statistic(s["numerator"]),
            d_statistic=statistic(s["denominator"]),
            m_d_sum_of_products=s["sum_of_products"],
        )
    if s["type"] == "cuped":
        return RegressionAdjustedStatistic(
            n=s["n"],
            post_statistic=statistic(s["post"]),
            pre_statistic=statistic(s["pre"]),
            post_pre_sum_of_products=s["sum_of_products"],
            theta=0,
        )
    if s["type"] == "quantile":
        return QuantileStatistic(**{k: v for k, v in s.items() if k != "type"})
    if s["type"] == "quantile_clustered":
        return QuantileClusteredStatistic(**{k: v for k, v in s.items() if k != "type"})
    raise ValueError(s["type"])


def run(case):
    a, b = statistic(case["control"]), statistic(case["treatment"])
    alpha = case.get("alpha", 0.05)
    if case["engine"] == "bayesian":
        prior = GaussianPrior(
            mean=case.get("prior_mean", 0.0),
            variance=case.get("prior_stddev", 0.3) ** 2,
            proper=case.get("proper", True),
        )
        config = EffectBayesianConfig(
            alpha=alpha, inverse=case.get("inverse", False), prior_effect=prior
        )
        r = EffectBayesianABTest(a, b, config).compute_result()
        if r.error_message:
            return None
        return {
            "lift": r.expected,
            "ci": list(r.ci),
            "chance_to_win": r.chance_to_win,
            "risk": r.risk[1],
            "risk_control": r.risk[0],
        }
    if case["engine"] == "sequential":
        config = SequentialConfig(alpha=alpha, sequential_tuning_parameter=case["tuning"])
        r = SequentialTwoSidedTTest(a, b, config).compute_result()
    else:
        r = TwoSidedTTest(a, b, FrequentistConfig(alpha=alpha)).compute_result()
    if r.error_message:
        return None
    return {"lift": r.expected, "ci": list(r.ci), "p_value": r.p_value}


def main():
    cases = json.load(sys.stdin)
    json.dump([run(c) for c in cases], sys.stdout)


if __name__ == "__main__":
    main()
