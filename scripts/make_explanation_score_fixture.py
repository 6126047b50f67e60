#!/usr/bin/env python3
"""Writes crates/dd-explain/tests/fixtures/scores.json: simulations on fixed pseudo-random inputs,
their linear calibration and OpenAI's three scores, computed here independently of the Rust code
(plain Python, no dependencies) from the definitions in OpenAI's automated-interpretability
(explanations/scoring.py and the linear calibration, scikit-learn's LinearRegression):

    ev_correlation_score         Pearson r of expected values and true activations, all tokens pooled
    rsquared_score               1 - mean((t - p)^2) / mean(t^2), p calibrated
    absolute_dev_explained_score 1 - mean|t - p| / mean|t|, p calibrated

Run from the repository root: python3 scripts/make_explanation_score_fixture.py
"""
import json
import math
import os

STATE = [20261206]


def uniform():
    # A 64-bit LCG (Knuth's MMIX constants): the inputs only need to be fixed, not good.
    STATE[0] = (STATE[0] * 6364136223846793005 + 1442695040888963407) % (1 << 64)
    return (STATE[0] >> 11) / float(1 << 53)


def sequence(length, sparse, random):
    true = []
    expected = []
    for _ in range(length):
        fires = uniform() < (0.15 if sparse else 0.6)
        t = (uniform() * 4.0) if fires else (uniform() * 0.1 - 0.05)
        true.append(round(t, 6))
        # A noisy simulator on the 0-10 scale that sees the truth through a blur.
        e = min(10.0, max(0.0, 2.0 * t + uniform() * 3.0))
        expected.append(round(e, 6))
    return {"expected": expected, "true": true, "random": random}


def mean(values):
    return sum(values) / len(values)


def pearson(x, y):
    if len(x) < 2:
        return None
    mx, my = mean(x), mean(y)
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    if sxx == 0 or syy == 0:
        return None
    return sxy / math.sqrt(sxx * syy)


def fit(simulated, true):
    # Ordinary least squares with an intercept, closed form for one feature.
    ms, mt = mean(simulated), mean(true)
    var = sum((s - ms) ** 2 for s in simulated)
    slope = sum((s - ms) * (t - mt) for s, t in zip(simulated, true)) / var if var > 0 else 0.0
    return slope, mt - slope * ms


def pooled(sequences, key):
    return [v for s in sequences for v in s[key]]


def case(name, calibration, scored):
    slope, intercept = fit(pooled(calibration, "expected"), pooled(calibration, "true"))
    e, t = pooled(scored, "expected"), pooled(scored, "true")
    p = [slope * v + intercept for v in e]
    sq = sum(v * v for v in t)
    ab = sum(abs(v) for v in t)
    top = [s for s in scored if not s["random"]]
    rnd = [s for s in scored if s["random"]]
    return {
        "name": name,
        "calibration": calibration,
        "scored": scored,
        "slope": slope,
        "intercept": intercept,
        "ev_correlation_score": pearson(t, e),
        "rsquared_score": 1 - sum((a - b) ** 2 for a, b in zip(t, p)) / sq if sq > 0 else None,
        "absolute_dev_explained_score": 1 - sum(abs(a - b) for a, b in zip(t, p)) / ab if ab > 0 else None,
        "ev_correlation_score_top": pearson(pooled(top, "true"), pooled(top, "expected")),
        "ev_correlation_score_random": pearson(pooled(rnd, "true"), pooled(rnd, "expected")),
    }


cases = [
    case("dense", [sequence(32, False, False), sequence(32, False, True)],
         [sequence(32, False, False), sequence(24, False, False), sequence(32, False, True)]),
    case("sparse", [sequence(64, True, False) for _ in range(3)] + [sequence(64, True, True)],
         [sequence(64, True, False) for _ in range(5)] + [sequence(64, True, True) for _ in range(3)]),
    case("constant simulation",
         [{"expected": [3.0] * 8, "true": [0.0, 1.0, 0.0, 2.0, 0.0, 0.0, 1.5, 0.0], "random": False}],
         [sequence(16, False, False), {"expected": [0.0] * 6, "true": [0.0] * 6, "random": True}]),
]
path = os.path.join("crates", "dd-explain", "tests", "fixtures", "scores.json")
with open(path, "w") as out:
    json.dump({"cases": cases}, out, indent=1)
    out.write("\n")
print(f"wrote {path}")
