#!/usr/bin/env python3
"""Writes the golden fixtures of crates/robust/tests/fixtures/ from independent implementations.

Cairn's aggregation rules, pre-aggregation steps and attacks are checked against
ByzFL (https://github.com/LPD-EPFL/byzfl) and Flower's server-side aggregation functions
(flwr.server.strategy.aggregate) on fixed, seeded inputs. This script:

1. creates a virtual environment (default /tmp/fixtures-venv, or $FIXTURES_VENV) and installs
   byzfl, flwr and numpy into it, unless it already runs inside one that has them;
2. draws the inputs with seeded numpy (several (n, d, f) cases, some with outliers or duplicates);
3. runs each library's functions on them, in float64 (the inputs are float32 values, so both
   sides start from exactly the same numbers);
4. writes byzfl.json, byzfl_attacks.json and flwr.json.

Each check records the library call, the parameters, and the Cairn rule and pre-aggregation chain
that must give the same output (in the `cairn aggregate --rule/--pre` syntax), so the mapping
between definitions (e.g. which Krum variant) lives here, next to the call it mirrors.

CI never runs this script: crates/robust/tests/fixtures.rs only reads the JSON.

Usage:  python3 scripts/make_fixtures.py [--out crates/robust/tests/fixtures]
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["byzfl==0.0.11", "flwr==1.42.0", "numpy"]


def ensure_environment():
    """Re-executes this script inside a venv that has byzfl and flwr."""
    try:
        import byzfl  # noqa: F401
        import flwr  # noqa: F401
        import numpy  # noqa: F401
        return
    except ImportError:
        pass
    venv = Path(os.environ.get("FIXTURES_VENV", "/tmp/fixtures-venv"))
    python = venv / "bin" / "python"
    if Path(sys.prefix).resolve() == venv.resolve():
        sys.exit(f"{python} lacks byzfl/flwr even after installing them; see the pip output above")
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *PACKAGES], check=True)
    os.execv(str(python), [str(python), __file__, *sys.argv[1:]])


ensure_environment()

import numpy as np  # noqa: E402
import byzfl  # noqa: E402
agg = byzfl  # aggregators and pre-aggregators are exported at the top level
atk = byzfl  # so are the attacks
from flwr.server.strategy import aggregate as flwr_agg  # noqa: E402


def case(name, n, d, f, seed, outliers=0, duplicates=0, heavy_tail=False):
    """Honest updates around a random centre, the last `outliers` rows shifted far away."""
    rng = np.random.default_rng(seed)
    centre = rng.normal(0.0, 1.0, size=d)
    if heavy_tail:
        rows = centre + rng.standard_t(df=2, size=(n, d))
    else:
        rows = centre + rng.normal(0.0, 1.0, size=(n, d))
    for k in range(outliers):
        rows[n - 1 - k] = rng.normal(20.0 * (k + 1), 5.0, size=d)
    for k in range(duplicates):
        rows[k + 1] = rows[0]
    rows = rows.astype(np.float32)
    return {"name": name, "n": n, "d": d, "f": f, "inputs": rows}


CASES = [
    case("small_gaussian", n=7, d=5, f=1, seed=1),
    case("two_outliers", n=11, d=10, f=2, seed=2, outliers=2),
    case("three_outliers_d50", n=15, d=50, f=3, seed=3, outliers=3),
    case("even_heavy_tail", n=12, d=20, f=2, seed=4, heavy_tail=True),
    case("duplicates", n=9, d=8, f=2, seed=5, duplicates=2),
]


def as64(rows):
    return np.array(rows, dtype=np.float64)


def listed(vector):
    return [float(v) for v in np.asarray(vector, dtype=np.float64).ravel()]


def byzfl_checks(c):
    """ByzFL aggregators alone and after each pre-aggregator."""
    n, f = c["n"], c["f"]
    x = c["inputs"]
    checks = []

    def add(call, params, rule, pre, fn, pre_fns=()):
        vectors = as64(x)
        for step in pre_fns:
            vectors = np.asarray(step(vectors.copy()), dtype=np.float64)
        out = fn(vectors)
        checks.append({"call": call, "params": params, "rule": rule, "pre": pre, "output": listed(out)})

    add("Average()", {}, "mean", "", agg.Average())
    add("Median()", {}, "median", "", agg.Median())
    add("TrMean(f)", {"f": f}, f"trimmed_mean:{f}", "", agg.TrMean(f=f))
    for nu, t in [(0.1, 3), (1e-6, 100)]:
        add("GeometricMedian(nu, T)", {"nu": nu, "T": t}, f"geometric_median:{nu}:{t}:zeros", "",
            agg.GeometricMedian(nu=nu, T=t))
    # ByzFL's Krum averages the n - f - 1 nearest squared distances (KrumVariant::ByzFl).
    add("Krum(f)", {"f": f}, f"krum:{f}:byzfl", "", agg.Krum(f=f))
    add("MultiKrum(f)", {"f": f}, f"multi_krum:{f}:auto:byzfl", "", agg.MultiKrum(f=f))
    for tau, iterations in [(100.0, 1), (1.0, 3), (0.5, 10)]:
        add("CenteredClipping(L, tau)", {"L": iterations, "tau": tau},
            f"centered_clipping:{tau}:{iterations}", "",
            agg.CenteredClipping(L=iterations, tau=tau))
    add("MDA(f)", {"f": f}, f"mda:{f}", "", agg.MDA(f=f))
    for idx in [0, n - 1]:
        add("MoNNA(f, idx)", {"f": f, "idx": idx}, f"monna:{f}:{idx}", "", agg.MoNNA(f=f, idx=idx))
    add("Meamed(f)", {"f": f}, f"meamed:{f}", "", agg.Meamed(f=f))

    pres = [
        ("NNM(f)", {"f": f}, f"nnm:{f}", agg.NNM(f=f)),
        ("Clipping(c)", {"c": 2.0}, "clip:2", agg.Clipping(c=2.0)),
        ("Clipping(c)", {"c": 10.0}, "clip:10", agg.Clipping(c=10.0)),
        ("ARC(f)", {"f": f}, f"arc:{f}", agg.ARC(f=f)),
    ]
    rules = [
        ("Average()", {}, "mean", agg.Average()),
        ("Median()", {}, "median", agg.Median()),
        ("TrMean(f)", {"f": f}, f"trimmed_mean:{f}", agg.TrMean(f=f)),
        ("Krum(f)", {"f": f}, f"krum:{f}:byzfl", agg.Krum(f=f)),
    ]
    for pre_call, pre_params, pre_text, pre_fn in pres:
        for call, params, rule, fn in rules:
            add(f"{call} after {pre_call}", {**params, **{"pre_" + k: v for k, v in pre_params.items()}},
                rule, pre_text, fn, [pre_fn])
    # A chain of two steps, as ByzFL's robust aggregator applies them in order.
    add("Median() after ARC(f), NNM(f)", {"f": f}, "median", f"arc:{f},nnm:{f}", agg.Median(),
        [agg.ARC(f=f), agg.NNM(f=f)])
    return checks


def flwr_checks(c):
    """Flower's server-side aggregation functions (one layer per client)."""
    n, f = c["n"], c["f"]
    x = as64(c["inputs"])
    examples = [int(k % 5 + 1) for k in range(n)]

    def results(weights=None):
        return [([row.copy()], (weights[i] if weights else 1)) for i, row in enumerate(x)]

    checks = []

    def add(call, params, rule, out):
        checks.append({"call": call, "params": params, "rule": rule, "pre": "", "output": listed(out[0])})

    add("aggregate(results) with num_examples", {"num_examples": examples},
        "weighted_mean:" + ",".join(str(e) for e in examples), flwr_agg.aggregate(results(examples)))
    add("aggregate_median(results)", {}, "median", flwr_agg.aggregate_median(results()))
    for proportion in [0.1, 0.2, 0.3]:
        cut = int(proportion * n)
        add("aggregate_trimmed_avg(results, proportiontocut)", {"proportiontocut": proportion},
            f"trimmed_mean:{cut}", flwr_agg.aggregate_trimmed_avg(results(), proportion))
    # Flower's Krum sums the n - f - 2 nearest squared distances (KrumVariant::Textbook).
    add("aggregate_krum(results, num_malicious, to_keep=0)", {"num_malicious": f, "to_keep": 0},
        f"krum:{f}:textbook", flwr_agg.aggregate_krum(results(), f, 0))
    for keep in [2, n - f]:
        add("aggregate_krum(results, num_malicious, to_keep)", {"num_malicious": f, "to_keep": keep},
            f"multi_krum:{f}:{keep}:textbook", flwr_agg.aggregate_krum(results(), f, keep))
    if n >= 4 * f + 3:
        add("aggregate_bulyan(results, num_malicious, aggregate_krum, to_keep=0)",
            {"num_malicious": f}, f"bulyan:{f}",
            flwr_agg.aggregate_bulyan(results(), f, flwr_agg.aggregate_krum, to_keep=0))
    return checks


def attack_checks(c):
    """ByzFL attacks on the first n - f rows (the honest ones), f Byzantine copies each."""
    n, f = c["n"], c["f"]
    honest = as64(c["inputs"][: n - f])
    checks = []

    def add(call, params, attack, rule, pre, out):
        checks.append({"call": call, "params": params, "attack": attack, "rule": rule, "pre": pre,
                       "output": listed(out)})

    add("SignFlipping()", {}, "sign_flip:1", "mean", "", atk.SignFlipping()(honest.copy()))
    for tau in [0.1, 2.0]:
        add("InnerProductManipulation(tau)", {"tau": tau}, f"ipm:{tau}", "mean", "",
            atk.InnerProductManipulation(tau=tau)(honest.copy()))
    # ByzFL's ALIE adds tau * std; Cairn's subtracts z * std, so z = -tau.
    for tau in [1.5, -0.5]:
        add("ALittleIsEnough(tau)", {"tau": tau}, f"alie:{-tau}", "mean", "",
            atk.ALittleIsEnough(tau=tau)(honest.copy()))
    add("Mimic(epsilon)", {"epsilon": 1}, "mimic:1", "mean", "", atk.Mimic(epsilon=1)(honest.copy()))
    # Optimal attacks: ByzFL defaults (start 0, delta 10, ratio 0.8, 20 evaluations).
    optimal = [
        ("Average()", "mean", agg.Average(), "Clipping(2.0)", "clip:2", [agg.Clipping(c=2.0)]),
        ("Median()", "median", agg.Median(), "none", "", []),
        ("TrMean(f)", f"trimmed_mean:{f}", agg.TrMean(f=f), "NNM(f)", f"nnm:{f}", [agg.NNM(f=f)]),
    ]
    for agg_call, rule, agg_fn, pre_call, pre_text, pre_fns in optimal:
        out = atk.Optimal_InnerProductManipulation(agg=agg_fn, pre_agg_list=pre_fns, f=f)(honest.copy())
        add(f"Optimal_InnerProductManipulation(agg={agg_call}, pre_agg_list=[{pre_call}], f)",
            {"f": f}, "optimized_ipm:0:10:0.8:20", rule, pre_text, out)
        out = atk.Optimal_ALittleIsEnough(agg=agg_fn, pre_agg_list=pre_fns, f=f)(honest.copy())
        # ByzFL searches tau = 0, 10, 20, ...; Cairn's z = -tau, so the step is -10.
        add(f"Optimal_ALittleIsEnough(agg={agg_call}, pre_agg_list=[{pre_call}], f)",
            {"f": f}, "optimized_alie:0:-10:0.8:20", rule, pre_text, out)
    return checks


def compact(document):
    """JSON with one line per input row and per check, so diffs stay readable."""
    lines = ["{"]
    header = [k for k in document if k != "cases"]
    for key in header:
        lines.append(f" {json.dumps(key)}: {json.dumps(document[key])},")
    lines.append(' "cases": [')
    for i, c in enumerate(document["cases"]):
        lines.append("  {")
        for key in ["name", "n", "d", "f"]:
            lines.append(f"   {json.dumps(key)}: {json.dumps(c[key])},")
        lines.append('   "inputs": [')
        rows = [f"    {json.dumps(row)}" for row in c["inputs"]]
        lines.append(",\n".join(rows))
        lines.append("   ],")
        lines.append('   "checks": [')
        checks = [f"    {json.dumps(check)}" for check in c["checks"]]
        lines.append(",\n".join(checks))
        lines.append("   ]")
        lines.append("  }" + ("," if i + 1 < len(document["cases"]) else ""))
    lines.append(" ]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "crates/robust/tests/fixtures"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from importlib.metadata import version

    libraries = {
        "byzfl.json": ("byzfl", version("byzfl"), byzfl_checks),
        "flwr.json": ("flwr", version("flwr"), flwr_checks),
        "byzfl_attacks.json": ("byzfl", version("byzfl"), attack_checks),
    }
    for file, (library, version, make) in libraries.items():
        document = {
            "generator": "scripts/make_fixtures.py",
            "library": library,
            "version": version,
            "numpy": np.__version__,
            "cases": [
                {
                    "name": c["name"], "n": c["n"], "d": c["d"], "f": c["f"],
                    "inputs": [listed(row) for row in c["inputs"]],
                    "checks": make(c),
                }
                for c in CASES
            ],
        }
        path = out / file
        path.write_text(compact(document))
        total = sum(len(c["checks"]) for c in document["cases"])
        print(f"wrote {path} ({total} checks)")


if __name__ == "__main__":
    main()
