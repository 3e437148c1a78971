#!/usr/bin/env python3
"""The README's federated NeuMF run on ml-100k, from Python, with its curve plotted.

    fedrec train --data ml-100k-loo --model neumf --out fed-neumf.fr

is, in Python (same options, same defaults, the same model file):

    model = fedrec.train(data="ml-100k-loo", model="neumf")
    model.save("fed-neumf.fr")

This script trains it, printing each round, saves the model and a PNG of HR@10, NDCG@10
and the training loss per round (matplotlib, headless), and shows a user's top 10.

usage: ml100k_neumf.py [--data DIR] [--rounds R] [--out MODEL] [--plot PNG]
(DIR: the NCF split of ml-100k, `fedrec data split ml-100k/u.data --loo --negatives 99
--out ml-100k-loo`; default ../shared/data/ml-100k-loo beside the repository)
"""
import argparse
import os
import sys
import time

import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt  # noqa: E402

import fedrec  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "data", "ml-100k-loo"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=DEFAULT_DATA, help="the ml-100k leave-one-out split (NCF layout)")
    ap.add_argument("--rounds", type=int, default=None, help="rounds (default: the preset's, 30 for neumf)")
    ap.add_argument("--out", default="fed-neumf.fr", help="the model file")
    ap.add_argument("--plot", default="fed-neumf.png", help="the curve")
    a = ap.parse_args()
    if not os.path.isdir(a.data):
        print(f"ml100k_neumf: no data at {a.data}: make it with fedrec data split ml-100k/u.data --loo "
              "--negatives 99 --out ml-100k-loo and pass --data", file=sys.stderr)
        return 1

    def progress(m: dict) -> None:
        print(f"round {m['round']:3d}  loss {m['loss']:.4f}  hr@10 {m.get('hr@10', float('nan')):.4f}  "
              f"ndcg@10 {m.get('ndcg@10', float('nan')):.4f}  {m['seconds']:.2f} s", flush=True)

    t0 = time.monotonic()
    model = fedrec.train(data=a.data, model="neumf", rounds=a.rounds, callback=progress)
    print(f"trained in {time.monotonic() - t0:.1f} s: {model}; final {model.summary['final']}")
    model.save(a.out)

    h = model.history
    rounds = [m["round"] for m in h]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(rounds, [m.get("hr@10") for m in h], label="HR@10")
    ax.plot(rounds, [m.get("ndcg@10") for m in h], label="NDCG@10")
    ax.set_xlabel("round")
    ax.set_ylabel("metric")
    ax2 = ax.twinx()
    ax2.plot(rounds, [m["loss"] for m in h], color="gray", linestyle="--", label="training loss")
    ax2.set_ylabel("loss")
    ax.set_title(f"federated neumf on ml-100k (leave-one-out, 99 negatives), {len(h)} rounds")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="center right")
    fig.tight_layout()
    fig.savefig(a.plot, dpi=120)
    print(f"model: {a.out}  curve: {a.plot}")

    user = model.user_ids[41]
    items, scores = model.recommend(user, k=10)
    print(f"top 10 for user {user}: {items.tolist()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
