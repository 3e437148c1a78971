#!/usr/bin/env python3
"""PyPI LightFM on the split fedrec trains on (bench/run_hybrid.sh): ml-100k-loo's
train.rating / test.rating / test.negative, the side features of hybrid_features.py
(identity + features, weight 1 each, as fedrec composes them), optionally cold items
held out entirely (a file of item ids, the one given to fedrec's --cold-items).
Metrics, defined as fedrec's (src/eval/eval.c): sampled hr@10, ndcg@10, auc of each test
item against its user's 99 negatives (ties count half); full-catalogue precision@10 and
auc (the user's training items excluded); cold start: each user's cold items ranked among
the cold items alone (auc, precision@10). Prints one JSON object."""
import argparse, json, math, time
import numpy as np
import scipy.sparse as sp

ap = argparse.ArgumentParser()
ap.add_argument('--data', required=True)
ap.add_argument('--features', required=True)
ap.add_argument('--cold', default=None)
ap.add_argument('--loss', default='warp')
ap.add_argument('--dim', type=int, default=32)
ap.add_argument('--lr', type=float, default=0.05)
ap.add_argument('--alpha', type=float, default=0.0)
ap.add_argument('--epochs', type=int, default=20)
ap.add_argument('--no-features', action='store_true')
ap.add_argument('--threads', type=int, default=1)
ap.add_argument('--seed', type=int, default=1)
a = ap.parse_args()
from lightfm import LightFM

def read(path):
    return [tuple(int(x) for x in l.split('\t')[:2]) for l in open(path) if l.strip()]
train, test = read(a.data + '/train.rating'), read(a.data + '/test.rating')
negs = {}
for l in open(a.data + '/test.negative'):
    p = l.rstrip('\n').split('\t')
    u, i = p[0].strip('()').split(',')
    negs[int(u)] = [int(x) for x in p[1:]]
nu = 1 + max(max(u for u, _ in train), max(u for u, _ in test))
ni = 1 + max(max(i for _, i in train), max(i for _, i in test), max(max(v) for v in negs.values()))
cold = set()
if a.cold:
    cold = {int(l) for l in open(a.cold) if l.strip() and not l.startswith('#')}
cold_pos = {}
for u, i in train + test:
    if i in cold: cold_pos.setdefault(u, set()).add(i)
wtrain = [(u, i) for u, i in train if i not in cold]
wtest = [(u, i) for u, i in test if i not in cold]

def feats(path, n):
    names, rows, cols, vals = {}, list(range(n)), list(range(n)), [1.0] * n
    if not a.no_features:
        for l in open(path):
            p = l.rstrip('\n').split('\t')
            for f in (p[1].split() if len(p) > 1 else []):
                k = names.setdefault(f, len(names))
                rows.append(int(p[0])); cols.append(n + k); vals.append(1.0)
    return sp.csr_matrix((vals, (rows, cols)), shape=(n, n + len(names)), dtype=np.float32)
uf, itf = feats(a.features + '/users.tsv', nu), feats(a.features + '/items.tsv', ni)
X = sp.coo_matrix((np.ones(len(wtrain), np.float32), ([u for u, _ in wtrain], [i for _, i in wtrain])), shape=(nu, ni))
m = LightFM(no_components=a.dim, loss=a.loss, learning_rate=a.lr, item_alpha=a.alpha, user_alpha=a.alpha,
            random_state=a.seed)
t0 = time.perf_counter()
for e in range(a.epochs):
    m.fit_partial(X, user_features=uf, item_features=itf, epochs=1, num_threads=a.threads)
sec = (time.perf_counter() - t0) / a.epochs

def scores(u, items):
    items = np.asarray(items, dtype=np.int32)
    return m.predict(np.full(len(items), u, dtype=np.int32), items, user_features=uf, item_features=itf,
                     num_threads=a.threads)
def pos_of(s, k):  # expected position of candidate k: higher first, ties half
    return float(np.sum(s > s[k])) + 0.5 * float(np.sum(s == s[k]) - 1)
hr = nd = auc = 0.0
for u, i in wtest:
    s = scores(u, [i] + negs[u])
    p = pos_of(s, 0)
    hr += p < 10
    nd += 1.0 / math.log2(p + 2) if p < 10 else 0.0
    auc += (float(np.sum(s[1:] < s[0])) + 0.5 * float(np.sum(s[1:] == s[0]))) / len(negs[u])
n = len(wtest)
out = {'tool': 'lightfm', 'loss': a.loss, 'dim': a.dim, 'epochs': a.epochs, 'seconds_per_epoch': sec,
       'hr@10': hr / n, 'ndcg@10': nd / n, 'auc': auc / n}
# full catalogue (training items excluded), as fedrec's _full metrics
seen = {}
for u, i in wtrain: seen.setdefault(u, set()).add(i)
allitems = np.arange(ni)
prec = aucf = 0.0
for u, i in wtest:
    s = scores(u, allitems)
    mask = np.ones(ni, bool); mask[list(seen.get(u, ()))] = False
    mask[list(cold)] = mask[list(cold)]  # cold items stay candidates (fedrec's full eval ranks them too)
    cand = s[mask]; si = s[i]
    above = float(np.sum(cand > si)); tie = float(np.sum(cand == si)) - 1
    p = above + 0.5 * tie
    prec += (p < 10) / 10.0
    aucf += (float(np.sum(cand < si)) + 0.5 * tie) / (len(cand) - 1)
out['precision@10_full'] = prec / n
out['auc_full'] = aucf / n
if cold:
    cl = np.array(sorted(cold & set(range(ni))))
    ca = cp = 0.0
    nuc = 0
    for u, pos in sorted(cold_pos.items()):
        s = scores(u, cl)
        isp = np.isin(cl, list(pos))
        sp_, sn = s[isp], s[~isp]
        if len(sn) == 0: continue
        a_ = 0.0; hits = 0.0
        for x in sp_:
            a_ += (np.sum(sn < x) + 0.5 * np.sum(sn == x)) / len(sn)
            p = float(np.sum(s > x)) + 0.5 * (float(np.sum(s == x)) - 1)
            hits += p < 10
        ca += a_ / len(sp_); cp += hits / 10.0; nuc += 1
    out['auc_cold'] = ca / nuc
    out['precision@10_cold'] = cp / nuc
    out['cold_users'] = nuc
print(json.dumps(out))
