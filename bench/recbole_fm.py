#!/usr/bin/env python3
"""RecBole's context-aware FM (Rendle 2010) on fedrec's split and features, for bench/run_fm.sh.

Reads an NCF split (train.rating, test.rating, test.negative with 99 negatives: ml-100k-loo)
and the side features of bench/hybrid_features.py (users.tsv: age bucket, gender,
occupation; items.tsv: genres, year), and writes them as RecBole atomic files: .inter
(user_id, item_id: no rating, no timestamp, which a context model would take as features),
.user (age, gender, occupation: tokens), .item (genre: token_seq, year: token). RecBole's FM
then has 7 fields (user id, item id, age, gender, occupation, genres, year): first-order
weights plus the pairwise interactions of the field embeddings; a token_seq field (genres)
enters as the mean of its tokens' embeddings (RecBole's pooling), where fedrec sums each
genre with weight 1.

Training is RecBole's own (Trainer._train_epoch over its TrainDataLoader): pointwise
BCE-with-logits (FM's loss) on each training pair (label 1) and `--neg` negatives a pair drawn
uniformly among the items the user has no training interaction with (label 0; RecBole's
train_neg_sample_args, its context models' negative sampling), Adam. Its defaults unless
overridden: embedding_size 10, lr 0.001, batch 2048, one negative, weight decay 0, early
stopping after 10 evaluations without a better one, at most 300 epochs.

Early stopping uses a validation cut of train.rating only (never the test): each user's
last training row in train.rating's order (latest timestamp, ties the larger item id: the
rule that made the test split) is held out with 99 negatives drawn (seeded) among the items
the user has no training row for; every epoch the model scores these candidates (NDCG@10,
fedrec's rule). The best epoch's model (trained on train.rating without the held-out rows:
RecBole's protocol) is scored on fedrec's test candidates; with --refit a second model is
trained on all of train.rating for that many epochs (as fedrec trains on all of it, for the
epochs its preset chose on a validation cut) and scored too.

Metrics as fedrec's (src/eval/eval.c; bench/hybrid_ref.py computes LightFM's the same way):
sampled hr@10, ndcg@10, auc of each test item against its user's 99 negatives, a tie
counting half (its position is the mean of its tie group); full catalogue precision@10 and
auc (every item of the catalogue, the user's train.rating items excluded). Scores are FM's
logits (predict() is their sigmoid, which saturates into ties). "hr@10_ties_against" counts
a tied negative above the test item (the pessimistic rule of bench/recbole_sasrec.py).
Seconds per epoch: wall and CPU time (time.process_time: every thread of the process) of
the training pass alone (negative sampling, batches, forward, backward, Adam), not of the
evaluation. Prints one JSON line; progress on stderr.

usage: recbole_fm.py DATA FEATURES [--epochs 300] [--stopping-step 10] [--dim 10]
       [--lr 0.001] [--batch 2048] [--neg 1] [--weight-decay 0] [--threads 1] [--seed 2020]
       [--valid-seed 15] [--refit] [--write-valid DIR]
Run it with the venv that has recbole 1.2.1 and torch (FEDREC_REF_VENV)."""
import argparse, json, math, os, sys, tempfile, time, warnings
warnings.filterwarnings("ignore")  # pandas and torch deprecation notes from inside RecBole 1.2.1

ap = argparse.ArgumentParser()
ap.add_argument("data", help="NCF split directory: train.rating, test.rating, test.negative")
ap.add_argument("features", help="directory with users.tsv and items.tsv (bench/hybrid_features.py)")
ap.add_argument("--epochs", type=int, default=300, help="at most this many epochs (RecBole's default 300)")
ap.add_argument("--stopping-step", type=int, default=10,
                help="early stopping: epochs without a better validation NDCG@10 (RecBole's default 10)")
ap.add_argument("--dim", type=int, default=10, help="embedding_size (RecBole's FM default 10)")
ap.add_argument("--lr", type=float, default=0.001, help="Adam's learning rate (RecBole's default)")
ap.add_argument("--batch", type=int, default=2048, help="train_batch_size, negatives included (RecBole's)")
ap.add_argument("--neg", type=int, default=1, help="uniform negatives a training pair (RecBole's default 1)")
ap.add_argument("--weight-decay", type=float, default=0.0)
ap.add_argument("--threads", type=int, default=1, help="torch threads")
ap.add_argument("--seed", type=int, default=2020)
ap.add_argument("--valid-seed", type=int, default=15, help="seed of the validation cut's negatives")
ap.add_argument("--refit", action="store_true",
                help="also train on all of train.rating for the best epoch count and score that model")
ap.add_argument("--write-valid", default=None, metavar="DIR",
                help="only write the validation cut as an NCF split in DIR (train.rating, test.rating, "
                     "test.negative: for fedrec train --data DIR) and exit")
ap.add_argument("--work", default=None, help="directory for RecBole's files (default: a new temporary one)")
a = ap.parse_args()
sys.argv = sys.argv[:1]  # RecBole's Config reads the command line too (and says it ignores ours)


def die(msg):
    print(f"recbole_fm: {msg}", file=sys.stderr)
    sys.exit(2)


def read_pairs(path):
    out = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            p = line.split("\t")
            try:
                out.append((int(p[0]), int(p[1])))
            except (ValueError, IndexError):
                die(f"{path}:{n}: '{line.rstrip()[:60]}': expected user<TAB>item<TAB>...")
    return out


def read_negatives(path):
    negs = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            p = line.rstrip("\n").split("\t")
            try:
                u, i = p[0].strip("()").split(",")
                negs[int(u)] = (int(i), [int(x) for x in p[1:] if x])
            except ValueError:
                die(f"{path}:{n}: '{line.rstrip()[:60]}': expected (user,item)<TAB>neg1<TAB>...")
    return negs


def read_features(path):
    feats = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            p = line.rstrip("\n").split("\t")
            if not p[0]:
                continue
            try:
                feats[int(p[0])] = dict(x.split("=", 1) if "=" in x else (x, "1") for x in
                                        (p[1].split() if len(p) > 1 else []))
            except ValueError:
                die(f"{path}:{n}: '{line.rstrip()[:60]}': expected id<TAB>name=value ...")
    return feats


d = a.data
absent = [p for p in (os.path.join(d, "train.rating"), os.path.join(d, "test.rating"), os.path.join(d, "test.negative"),
                      os.path.join(a.features, "users.tsv"), os.path.join(a.features, "items.tsv")) if not os.path.isfile(p)]
if absent:
    print(f"recbole_fm: {absent[0]} is missing: nothing to compare (the split: train.rating, test.rating, "
          f"test.negative; the features: bench/hybrid_features.py ML100K_DIR OUT_DIR)")
    sys.exit(0)
train = read_pairs(os.path.join(d, "train.rating"))
test = dict(read_pairs(os.path.join(d, "test.rating")))
negs = read_negatives(os.path.join(d, "test.negative"))
ufeat = read_features(os.path.join(a.features, "users.tsv"))
ifeat_raw = {}
with open(os.path.join(a.features, "items.tsv")) as f:
    for line in f:
        p = line.rstrip("\n").split("\t")
        if p[0]:
            ifeat_raw[int(p[0])] = p[1].split() if len(p) > 1 else []
n_items = 1 + max([i for _, i in train] + list(test.values()) + [x for _, l in negs.values() for x in l]
                  + list(ifeat_raw))

# the validation cut: each user's last row of train.rating (its order: timestamp, then item)
by_user = {}
for u, i in train:
    by_user.setdefault(u, []).append(i)
import random
rng = random.Random(a.valid_seed)
valid, vtrain = {}, []
for u in sorted(by_user):
    items = by_user[u]
    if len(items) >= 2:
        valid[u] = items[-1]
        vtrain += [(u, i) for i in items[:-1]]
    else:
        vtrain += [(u, i) for i in items]
seen = {u: set(l) for u, l in by_user.items()}
vnegs = {}
for u in sorted(valid):
    chosen, cs = [], set()
    while len(chosen) < 99:
        j = rng.randrange(n_items)
        if j in seen[u] or j in cs:
            continue
        cs.add(j)
        chosen.append(j)
    vnegs[u] = chosen
if a.write_valid:
    os.makedirs(a.write_valid, exist_ok=True)
    lines = {}
    with open(os.path.join(d, "train.rating")) as f:
        for line in f:
            if line.strip():
                lines.setdefault(int(line.split("\t")[0]), []).append(line if line.endswith("\n") else line + "\n")
    with open(os.path.join(a.write_valid, "train.rating"), "w") as tr, \
            open(os.path.join(a.write_valid, "test.rating"), "w") as te, \
            open(os.path.join(a.write_valid, "test.negative"), "w") as ng:
        for u in sorted(lines):
            held = u in valid
            tr.writelines(lines[u][:-1] if held else lines[u])
            if held:
                te.write(lines[u][-1])
                ng.write(f"({u},{valid[u]})\t" + "\t".join(map(str, vnegs[u])) + "\n")
    sys.exit(0)

work = a.work or tempfile.mkdtemp(prefix="recbole-fm-")


def write_atomic(name, pairs):
    os.makedirs(os.path.join(work, name), exist_ok=True)
    with open(os.path.join(work, name, name + ".inter"), "w") as f:
        f.write("user_id:token\titem_id:token\n")
        for u, i in pairs:
            f.write(f"{u}\t{i}\n")
    with open(os.path.join(work, name, name + ".user"), "w") as f:
        f.write("user_id:token\tage:token\tgender:token\toccupation:token\n")
        for u in sorted(ufeat):
            g = ufeat[u]
            f.write(f"{u}\t{g.get('age', '')}\t{g.get('gender', '')}\t{g.get('occupation', '')}\n")
    with open(os.path.join(work, name, name + ".item"), "w") as f:
        f.write("item_id:token\tgenre:token_seq\tyear:token\n")
        for i in sorted(ifeat_raw):
            fs = ifeat_raw[i]
            genres = [x.split("=", 1)[1] for x in fs if x.startswith("genre=")]
            year = [x.split("=", 1)[1] for x in fs if x.startswith("year=")]
            f.write(f"{i}\t{' '.join(g.replace(' ', '_') for g in genres)}\t{year[0] if year else ''}\n")


write_atomic("frv", vtrain)
write_atomic("fr", train)

import numpy as np
import torch
torch.set_num_threads(a.threads)
from recbole.config import Config
from recbole.data import create_dataset
from recbole.data.dataloader import TrainDataLoader
from recbole.data.interaction import Interaction
from recbole.model.context_aware_recommender import FM
from recbole.sampler import Sampler
from recbole.trainer import Trainer
from recbole.utils import init_seed


def note(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def setup(name):
    cfg = {
        "data_path": work, "dataset": name, "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id",
        "load_col": {"inter": ["user_id", "item_id"], "user": ["user_id", "age", "gender", "occupation"],
                     "item": ["item_id", "genre", "year"]},
        "embedding_size": a.dim, "learning_rate": a.lr, "train_batch_size": a.batch,
        "weight_decay": a.weight_decay, "epochs": a.epochs,
        "train_neg_sample_args": {"distribution": "uniform", "sample_num": a.neg, "alpha": 1.0,
                                  "dynamic": False, "candidate_num": 0},
        # every row of the .inter file trains (RecBole's split with empty valid and test parts);
        # RecBole's evaluation is not used (the validation and test below are fedrec's)
        "eval_args": {"split": {"RS": [1.0, 0.0, 0.0]}, "order": "RO", "group_by": None, "mode": "labeled"},
        "metrics": ["AUC"], "valid_metric": "AUC",
        "use_gpu": False, "device": "cpu", "seed": a.seed, "reproducibility": True, "show_progress": False,
        "state": "ERROR", "checkpoint_dir": os.path.join(work, "saved"), "worker": 0, "log_wandb": False,
    }
    config = Config(model="FM", config_dict=cfg)
    init_seed(config["seed"], config["reproducibility"])
    ds = create_dataset(config)
    tr = ds.build()[0]
    if len(tr) != len(ds.inter_feat):
        die(f"RecBole's training part has {len(tr)} of {len(ds.inter_feat)} rows")
    sampler = Sampler(["train"], [tr], "uniform", 1.0).set_phase("train")
    loader = TrainDataLoader(config, tr, sampler, shuffle=True)
    init_seed(config["seed"], config["reproducibility"])
    model = FM(config, loader.dataset).to("cpu")
    return config, ds, loader, model, Trainer(config, model)


def scorer(ds, model):
    uid, iid = ds.field2token_id["user_id"], ds.field2token_id["item_id"]
    missing = [i for i in range(n_items) if str(i) not in iid]
    if missing:
        die(f"{len(missing)} items of the split (first {missing[0]}) have no row in {a.features}/items.tsv")
    item_ix = torch.tensor([iid[str(i)] for i in range(n_items)])
    # the features RecBole joins to a pair are the files' (read back through its token maps)
    users = sorted(ufeat)
    ju = ds.user_feat[torch.tensor([uid[str(u)] for u in users])]
    j = ds.item_feat[item_ix]
    for f in ("age", "gender", "occupation"):
        got = ds.id2token(f, ju[f].numpy())
        bad = [u for u, g in zip(users, got) if g != ufeat[u].get(f, "")]
        if bad:
            die(f"user {bad[0]}: RecBole's {f} is '{got[users.index(bad[0])]}', users.tsv says '{ufeat[bad[0]].get(f)}'")
    for i in range(n_items):
        want = ifeat_raw.get(i, [])
        g = sorted(ds.id2token("genre", [t for t in j["genre"][i].tolist() if t]))
        y = ds.id2token("year", [int(j["year"][i])])[0]
        if g != sorted(x.split("=", 1)[1].replace(" ", "_") for x in want if x.startswith("genre=")) or \
                y != next((x.split("=", 1)[1] for x in want if x.startswith("year=")), "[PAD]"):
            die(f"item {i}: RecBole's genres {g} and year '{y}' are not items.tsv's {want}")

    def scores(users, items):
        """logits of each (users[k], items[k]) (raw ids)"""
        inter = Interaction({"user_id": torch.tensor([uid[str(u)] for u in users]),
                             "item_id": item_ix[torch.tensor(items)]})
        with torch.no_grad():
            return model.forward(ds.join(inter)).numpy().astype(np.float64)
    return scores


def sampled(scores, cands):
    """cands: {user: (positive, [99 negatives])} -> hr@10, ndcg@10, auc, hr@10 with ties against"""
    us = sorted(cands)
    users, items = [], []
    for u in us:
        pos, ng = cands[u]
        users += [u] * (1 + len(ng))
        items += [pos] + ng
    s = scores(users, items)
    hr = nd = auc = hr_against = 0.0
    k = 0
    for u in us:
        m = 1 + len(cands[u][1])
        x = s[k:k + m]
        k += m
        above, tie, below = float(np.sum(x[1:] > x[0])), float(np.sum(x[1:] == x[0])), float(np.sum(x[1:] < x[0]))
        p = above + 0.5 * tie
        if p < 10:
            hr += 1
            nd += 1.0 / math.log2(p + 2)
        hr_against += above + tie < 10
        auc += (below + 0.5 * tie) / (m - 1)
    n = len(us)
    return {"hr@10": hr / n, "ndcg@10": nd / n, "auc": auc / n, "hr@10_ties_against": hr_against / n, "users": n}


def full(scores):
    """precision@10 and auc over the whole catalogue, the user's train.rating items excluded"""
    prec = aucf = 0.0
    us = sorted(test)
    for c in range(0, len(us), 32):
        chunk = us[c:c + 32]
        s = scores([u for u in chunk for _ in range(n_items)], list(range(n_items)) * len(chunk)).reshape(len(chunk), n_items)
        for r, u in enumerate(chunk):
            mask = np.ones(n_items, bool)
            mask[list(seen.get(u, ()))] = False
            cand, si = s[r][mask], s[r][test[u]]
            above, tie = float(np.sum(cand > si)), float(np.sum(cand == si)) - 1
            p = above + 0.5 * tie
            prec += (p < 10) / 10.0
            aucf += (float(np.sum(cand < si)) + 0.5 * tie) / (len(cand) - 1)
    return {"precision@10_full": prec / len(us), "auc_full": aucf / len(us)}


def train_epochs(trainer, loader, model, n, on_epoch=None):
    cpu, wall = [], []
    for ep in range(n):
        model.train()
        c0, w0 = time.process_time(), time.perf_counter()
        loss = trainer._train_epoch(loader, ep, show_progress=False)
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
        model.eval()
        if on_epoch and not on_epoch(ep + 1, loss, cpu[-1], wall[-1]):
            break
    return cpu, wall


# 1. train on the validation cut's training rows, early stopping on its held-out rows
note(f"{len(vtrain)} training rows, {len(valid)} validation users; {len(train)} rows for test")
config, vds, vloader, vmodel, vtrainer = setup("frv")
vscores = scorer(vds, vmodel)
vcands = {u: (valid[u], vnegs[u]) for u in valid}
curve, best = [], {"ndcg@10": -1.0, "epoch": 0}
best_state = None


def on_valid_epoch(ep, loss, cpu, wall):
    global best_state
    r = sampled(vscores, vcands)
    curve.append({"epoch": ep, "loss": float(loss), "hr@10": round(r["hr@10"], 4), "ndcg@10": round(r["ndcg@10"], 4)})
    note(f"epoch {ep}: loss {float(loss):.4f}, {cpu:.2f} s cpu, {wall:.2f} s wall; valid HR@10 {r['hr@10']:.4f} "
         f"NDCG@10 {r['ndcg@10']:.4f}")
    if r["ndcg@10"] > best["ndcg@10"]:
        best.update(r, epoch=ep)
        best_state = {k: v.detach().clone() for k, v in vmodel.state_dict().items()}
    return ep - best["epoch"] < a.stopping_step


cpu_v, wall_v = train_epochs(vtrainer, vloader, vmodel, a.epochs, on_valid_epoch)
vmodel.load_state_dict(best_state)
vmodel.eval()
tscores = scorer(vds, vmodel)
out = {"tool": "recbole", "model": "FM", "loss": "BCE with logits, uniform sampled negatives",
       "dim": a.dim, "lr": a.lr, "batch": a.batch, "neg": a.neg, "weight_decay": a.weight_decay,
       "threads": a.threads, "epochs_run": len(cpu_v), "best_epoch": best["epoch"],
       "valid": {"hr@10": best["hr@10"], "ndcg@10": best["ndcg@10"], "users": len(valid)}}
out.update(sampled(tscores, {u: (test[u], negs[u][1]) for u in test if u in negs}))
out.update(full(tscores))
out.update({"cpu_seconds_per_epoch": sum(cpu_v) / len(cpu_v), "seconds_per_epoch": sum(wall_v) / len(wall_v),
            "batches_per_epoch": len(vloader)})
note(f"best epoch {best['epoch']}: test HR@10 {out['hr@10']:.4f} NDCG@10 {out['ndcg@10']:.4f}")

# 2. optionally: all of train.rating, the best epoch count
if a.refit:
    _, fds, floader, fmodel, ftrainer = setup("fr")
    cpu_f, wall_f = train_epochs(ftrainer, floader, fmodel, best["epoch"],
                                 lambda ep, loss, c, w: note(f"refit epoch {ep}: loss {float(loss):.4f}, {c:.2f} s cpu") or True)
    fscores = scorer(fds, fmodel)
    r = sampled(fscores, {u: (test[u], negs[u][1]) for u in test if u in negs})
    r.update(full(fscores))
    r.update({"epochs": best["epoch"], "cpu_seconds_per_epoch": sum(cpu_f) / len(cpu_f),
              "seconds_per_epoch": sum(wall_f) / len(wall_f), "batches_per_epoch": len(floader)})
    out["refit"] = r
    note(f"refit ({best['epoch']} epochs on all of train.rating): test HR@10 {r['hr@10']:.4f} NDCG@10 {r['ndcg@10']:.4f}")
out["valid_curve"] = curve
print(json.dumps(out))
