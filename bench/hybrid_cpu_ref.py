"""CPU seconds per epoch of PyPI LightFM (process_time over fit_partial, one thread) on
ml-100k-loo's train.rating with bench/hybrid_features.py's features, as hybrid_ref.py trains it.
Usage: hybrid_cpu_ref.py DATA_DIR FEATURE_DIR warp|bpr EPOCHS (bench/hybrid_cpu.sh)."""
import sys, time, numpy as np, scipy.sparse as sp
from lightfm import LightFM
data, feat, loss, epochs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
train = [tuple(int(x) for x in l.split('\t')[:2]) for l in open(data + '/train.rating') if l.strip()]
test = [tuple(int(x) for x in l.split('\t')[:2]) for l in open(data + '/test.rating') if l.strip()]
negmax = max(int(x) for l in open(data + '/test.negative') for x in l.rstrip('\n').split('\t')[1:] if x)
nu = 1 + max(u for u, _ in train + test)
ni = 1 + max(max(i for _, i in train + test), negmax)
def feats(path, n):
    names, rows, cols, vals = {}, list(range(n)), list(range(n)), [1.0] * n
    for l in open(path):
        p = l.rstrip('\n').split('\t')
        for f in (p[1].split() if len(p) > 1 else []):
            k = names.setdefault(f, len(names)); rows.append(int(p[0])); cols.append(n + k); vals.append(1.0)
    return sp.csr_matrix((vals, (rows, cols)), shape=(n, n + len(names)), dtype=np.float32)
uf, itf = feats(feat + '/users.tsv', nu), feats(feat + '/items.tsv', ni)
X = sp.coo_matrix((np.ones(len(train), np.float32), ([u for u, _ in train], [i for _, i in train])), shape=(nu, ni))
m = LightFM(no_components=32, loss=loss, learning_rate=0.05, random_state=1)
t0 = time.process_time()
for e in range(epochs): m.fit_partial(X, user_features=uf, item_features=itf, epochs=1, num_threads=1)
print('%.4f' % ((time.process_time() - t0) / epochs))
