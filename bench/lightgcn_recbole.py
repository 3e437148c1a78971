#!/usr/bin/env python3
"""RecBole's LightGCN on a split in NCF layout (train.rating, test.rating, test.negative),
evaluated the way fedrec evaluates: HR@10 and NDCG@10 of each test item among its 99 given
negatives. RecBole trains on train.rating (converted to its atomic .inter file, every row
in its training set); its own evaluation is not used: after the chosen epochs the user and
item embeddings of its forward pass score the candidates here. Prints one JSON object a
line: {"epoch", "seconds" (that epoch's training, wall clock), "cpu_seconds" (its CPU time,
all threads), and "hr@10", "ndcg@10" at each evaluation.

usage: lightgcn_recbole.py DIR [--epochs N] [--eval-every K] [--dim 64] [--layers 2]
       [--lr 0.001] [--reg 1e-5] [--batch 2048] [--threads T]
Run it in a venv with recbole and torch (bench/run_lightgcn.sh makes one)."""
import argparse
import json
import math
import os
import sys
import tempfile
import time


def read_split(d):
    train = []
    with open(os.path.join(d, "train.rating")) as f:
        for line in f:
            p = line.split("\t")
            if len(p) >= 2:
                train.append((p[0], p[1], p[3].strip() if len(p) > 3 else "0"))
    tests = []
    with open(os.path.join(d, "test.negative")) as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            u, i = p[0].strip("()").split(",")
            tests.append((u, i, [x for x in p[1:] if x]))
    return train, tests


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--eval-every", type=int, default=10)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--lr", type=float, default=0.001)
    ap.add_argument("--reg", type=float, default=1e-5)
    ap.add_argument("--batch", type=int, default=2048)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=2020)
    a = ap.parse_args()

    import torch
    torch.set_num_threads(a.threads)
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.general_recommender import LightGCN
    from recbole.trainer import Trainer
    from recbole.utils import init_seed
    import scipy.sparse as sp
    if not hasattr(sp.dok_matrix, "_update"):  # RecBole 1.2.1 against scipy >= 1.13
        def _update(self, d):
            for (r, c), v in d.items():
                self._dict[(int(r), int(c))] = v
        sp.dok_matrix._update = _update

    train, tests = read_split(a.dir)
    tmp = tempfile.mkdtemp(prefix="recbole-lg-")
    name = "loo"
    os.makedirs(os.path.join(tmp, name))
    with open(os.path.join(tmp, name, name + ".inter"), "w") as f:
        f.write("user_id:token\titem_id:token\ttimestamp:float\n")
        for u, i, t in train:
            f.write(f"{u}\t{i}\t{t}\n")
    cfg = {
        "data_path": tmp, "dataset": name, "device": "cpu", "use_gpu": False, "seed": a.seed,
        "reproducibility": True, "embedding_size": a.dim, "n_layers": a.layers, "reg_weight": a.reg,
        "learning_rate": a.lr, "train_batch_size": a.batch, "epochs": a.epochs,
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        # every row trains; the valid and test parts RecBole insists on are one row each side
        "eval_args": {"split": {"RS": [0.998, 0.001, 0.001]}, "order": "RO", "group_by": None, "mode": "full"},
        "train_neg_sample_args": {"distribution": "uniform", "sample_num": 1},
        "show_progress": False, "state": "ERROR", "checkpoint_dir": tmp,
    }
    os.chdir(tmp)  # RecBole writes its logs (log/, log_tensorboard/) under the working directory
    config = Config(model="LightGCN", config_dict=cfg)
    init_seed(config["seed"], config["reproducibility"])
    ds = create_dataset(config)
    train_data, _, _ = data_preparation(config, ds)
    model = LightGCN(config, train_data.dataset).to("cpu")
    trainer = Trainer(config, model)
    uid = ds.field2token_id["user_id"]
    iid = ds.field2token_id["item_id"]

    def evaluate():
        model.eval()
        with torch.no_grad():
            ue, ie = model.forward()
        hr = nd = 0.0
        n = 0
        for u, i, negs in tests:
            if u not in uid or i not in iid:
                n += 1  # an unknown user or item cannot be ranked: a miss
                continue
            cand = [iid[i]] + [iid[x] for x in negs if x in iid]
            s = (ue[uid[u]].unsqueeze(0) * ie[torch.tensor(cand)]).sum(1)
            higher = int((s[1:] > s[0]).sum())
            ties = int((s[1:] == s[0]).sum())
            r = higher + ties / 2.0  # fedrec's rank: the mean position of a tie group
            if r < 10:
                hr += 1
                nd += 1.0 / math.log2(r + 2)
            n += 1
        model.train()
        return hr / n, nd / n

    for ep in range(1, a.epochs + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        trainer._train_epoch(train_data, ep - 1, show_progress=False)
        sec, cpu = time.perf_counter() - t0, time.process_time() - c0
        if ep % a.eval_every == 0 or ep == a.epochs:
            hr, nd = evaluate()
            print(json.dumps({"epoch": ep, "seconds": round(sec, 4), "cpu_seconds": round(cpu, 4), "hr@10": round(hr, 4),
                              "ndcg@10": round(nd, 4)}), flush=True)
        else:
            print(json.dumps({"epoch": ep, "seconds": round(sec, 4), "cpu_seconds": round(cpu, 4)}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
