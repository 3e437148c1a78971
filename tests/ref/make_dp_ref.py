#!/usr/bin/env python3
"""Reference ε values for fedrec's privacy accountant (tests/test_accountant.c reads them).

Not run by the tests. It needs two independent RDP accountants from PyPI, in a venv:
    python3 -m venv ~/.cache/fedrec-dp-venv
    ~/.cache/fedrec-dp-venv/bin/pip install dp-accounting
    ~/.cache/fedrec-dp-venv/bin/pip install --no-deps opacus
    ~/.cache/fedrec-dp-venv/bin/python tests/ref/make_dp_ref.py > tests/ref/dp_ref.txt

opacus is installed without its dependencies (torch): its RDP analysis
(opacus/accountants/analysis/rdp.py) needs only numpy and scipy, so that one file is
loaded by path; ε is computed exactly as opacus's RDPAccountant.get_privacy_spent does
(compute_rdp over RDPAccountant.DEFAULT_ALPHAS, then get_privacy_spent). dp-accounting is
used through its public RdpAccountant with a PoissonSampledDpEvent(q, GaussianDpEvent(σ))
composed R times.

For every (q, σ, R, δ) of the grid the file has three lines:
    eps opacus     q sigma R delta ε order   opacus, its default orders
    eps dpacc      q sigma R delta ε order   dp-accounting, its default orders
    eps dpacc_int  q sigma R delta ε order   dp-accounting, its integer default orders only
and the order lists themselves (`orders NAME N o_1 ... o_N`, %.17g), so the test can run
fedrec on exactly the same orders. dpacc_int is there because dp-accounting (0.6.0) sums
the absolute values of the fractional-order series, an upper bound on A_α, and drops a
fractional order whose series has not converged after 1000 terms; at integer orders both
libraries evaluate the same finite binomial sum.
"""
import importlib.util
import logging
import os
import sys
import warnings
from importlib import metadata

import numpy as np
from dp_accounting import dp_event
from dp_accounting.rdp import rdp_privacy_accountant as dpa


def load_opacus_rdp():
    spec = importlib.util.find_spec("opacus")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("opacus is not installed (pip install --no-deps opacus)")
    path = os.path.join(spec.submodule_search_locations[0], "accountants", "analysis", "rdp.py")
    mod_spec = importlib.util.spec_from_file_location("opacus_rdp_analysis", path)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    return mod


# opacus.accountants.rdp.RDPAccountant.DEFAULT_ALPHAS (its module imports torch; the list is
# copied here and checked against the source text below).
OPACUS_ALPHAS = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))


def check_opacus_alphas():
    spec = importlib.util.find_spec("opacus")
    src = open(os.path.join(spec.submodule_search_locations[0], "accountants", "rdp.py")).read()
    if "DEFAULT_ALPHAS = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))" not in src:
        sys.exit("opacus's RDPAccountant.DEFAULT_ALPHAS changed: update OPACUS_ALPHAS")


def opacus_eps(orp, q, sigma, steps, delta):
    rdp = orp.compute_rdp(q=q, noise_multiplier=sigma, steps=steps, orders=OPACUS_ALPHAS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "optimal order is the largest alpha"
        eps, order = orp.get_privacy_spent(orders=OPACUS_ALPHAS, rdp=rdp, delta=delta)
    return float(eps), float(order)


def dpacc_eps(q, sigma, steps, delta, orders=None):
    acc = dpa.RdpAccountant(orders=orders)
    event = dp_event.PoissonSampledDpEvent(q, dp_event.GaussianDpEvent(sigma))
    acc.compose(dp_event.SelfComposedDpEvent(event, steps))
    eps, order = acc.get_epsilon_and_optimal_order(delta)
    return float(eps), float(order)


def main():
    logging.getLogger("absl").setLevel(logging.ERROR)  # "failed to converge" per order
    check_opacus_alphas()
    orp = load_opacus_rdp()
    dp_orders = [float(o) for o in dpa.DEFAULT_RDP_ORDERS]
    dp_int = [o for o in dp_orders if o == int(o)]
    vers = ", ".join(f"{p} {metadata.version(p)}" for p in ("dp-accounting", "opacus", "numpy", "scipy"))
    print("# fedrec privacy accountant reference values: made by tests/ref/make_dp_ref.py (not run by the tests)")
    print(f"# with {vers}; python {sys.version.split()[0]}")
    print("# orders NAME N o_1 .. o_N    the orders each library uses (shortest round-trip decimals)")
    print("# eps LIB q sigma steps delta epsilon order")
    for name, orders in (("opacus", OPACUS_ALPHAS), ("dpacc", dp_orders), ("dpacc_int", dp_int)):
        print(f"orders {name} {len(orders)} " + " ".join(f"{o!r}" for o in orders))
    for q in (0.001, 0.01, 0.1, 1.0):
        for sigma in (0.5, 0.8, 1.0, 2.0, 5.0):
            for steps in (1, 10, 100, 1000, 10000):
                for delta in (1e-5, 1e-7):
                    rows = (("opacus", opacus_eps(orp, q, sigma, steps, delta)),
                            ("dpacc", dpacc_eps(q, sigma, steps, delta)),
                            ("dpacc_int", dpacc_eps(q, sigma, steps, delta, dp_int)))
                    for lib, (eps, order) in rows:
                        if not np.isfinite(eps):
                            sys.exit(f"{lib}: ε not finite at q={q} sigma={sigma} steps={steps} delta={delta}")
                        print(f"eps {lib} {q!r} {sigma!r} {steps} {delta!r} {eps!r} {order!r}")


if __name__ == "__main__":
    main()
