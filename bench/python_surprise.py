#!/usr/bin/env python3
"""fedrec from Python beside Surprise's SVD on ml-100k u1 (u1.base to fit, u1.test to
score): fit time and RMSE, each written as its users write it, best of REPEATS fits.

  fedrec:   model = fedrec.train(data="u1.base", test="u1.test", centralized=True)
            model.evaluate()["rmse"]
  Surprise: data = Dataset.load_from_folds([("u1.base", "u1.test")], Reader("ml-100k"))
            trainset, testset = next(PredefinedKFold().split(data))
            algo = SVD(); algo.fit(trainset); accuracy.rmse(algo.test(testset))

fedrec runs its defaults (centralized mf: 40 epochs of SGD one example at a time; the
federated run: 100 rounds of FedAdam over 943 clients), with eval_every=0 so that the fit
time holds training alone, as Surprise's fit does; Surprise runs SVD's defaults (100
factors, 20 epochs, lr 0.005, reg 0.02) and SVD++ is left out (minutes).

usage: python_surprise.py ML100K_DIR [REPEATS=3]
"""
import os
import sys
import time

import fedrec


def main() -> int:
    d = sys.argv[1]
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    base, test = os.path.join(d, "u1.base"), os.path.join(d, "u1.test")
    rows = []

    def best(fn):
        times, val = [], None
        for _ in range(reps):
            t = time.perf_counter()
            val = fn()
            times.append(time.perf_counter() - t)
        return min(times), val

    # fedrec: the fit (load, train) timed; the RMSE from the model afterwards
    for name, opts in (("fedrec mf, centralized (defaults)", {"centralized": True}),
                       ("fedrec mf, federated (defaults, 943 clients)", {})):
        t, model = best(lambda: fedrec.train(data=base, test=test, eval_every=0, **opts))
        rows.append((name, t, model.evaluate()["rmse"]))
        print(f"{name}: fit {t:.2f} s  RMSE {rows[-1][2]:.4f}", flush=True)

    try:
        from surprise import SVD, Dataset, Reader, accuracy
        from surprise.model_selection import PredefinedKFold
    except ImportError:
        print("python_surprise: scikit-surprise is not installed in this interpreter (a benchmark venv: "
              "python3 -m venv --system-site-packages ~/.cache/fedrec-surprise-venv && "
              "~/.cache/fedrec-surprise-venv/bin/pip install scikit-surprise)")
        return 0
    data = Dataset.load_from_folds([(base, test)], Reader("ml-100k"))
    trainset, testset = next(PredefinedKFold().split(data))

    def fit_svd():
        algo = SVD(random_state=1)
        algo.fit(trainset)
        return algo

    t, algo = best(fit_svd)
    rmse = accuracy.rmse(algo.test(testset), verbose=False)
    rows.append(("Surprise SVD (defaults)", t, rmse))
    print(f"Surprise SVD (defaults): fit {t:.2f} s  RMSE {rmse:.4f}", flush=True)
    ref = rows[-1][1]
    print("\n| system | fit (s) | RMSE on u1.test | fit time vs SVD |\n|---|---|---|---|")
    for name, t, r in rows:
        print(f"| {name} | {t:.2f} | {r:.4f} | {t / ref:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
