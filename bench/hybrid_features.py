#!/usr/bin/env python3
"""Writes side-feature files for ml-100k-loo (NCF ids = MovieLens ids - 1, no id maps)
from ml-100k's u.user and u.item, with the names fedrec's metadata reader gives
(fr_features_from_meta): users age=<ML-1M bucket>, gender=, occupation=; items genre=,
year=. Usage: hybrid_features.py ML100K_DIR OUT_DIR -> OUT_DIR/users.tsv, items.tsv"""
import os, re, sys

src, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
genres = [l.split('|')[0] for l in open(os.path.join(src, 'u.genre'), encoding='latin-1') if '|' in l]
def bucket(a):
    b = 1
    for s in (1, 18, 25, 35, 45, 50, 56):
        if a >= s: b = s
    return b
with open(os.path.join(out, 'users.tsv'), 'w') as f:
    for l in open(os.path.join(src, 'u.user'), encoding='latin-1'):
        p = l.rstrip('\n').split('|')
        if len(p) != 5: continue
        f.write('%d\tage=%d gender=%s occupation=%s\n' % (int(p[0]) - 1, bucket(int(p[1])), p[2], p[3]))
with open(os.path.join(out, 'items.tsv'), 'w') as f:
    for l in open(os.path.join(src, 'u.item'), encoding='latin-1'):
        p = l.rstrip('\n').split('|')
        if len(p) != 24: continue
        feats = ['genre=' + genres[g] for g in range(19) if p[5 + g] == '1']
        m = re.search(r'\((\d{4})\)\s*$', p[1])
        if m: feats.append('year=' + m.group(1))
        f.write('%d\t%s\n' % (int(p[0]) - 1, ' '.join(feats)))
