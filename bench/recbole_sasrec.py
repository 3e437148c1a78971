#!/usr/bin/env python3
"""RecBole's SASRec on fedrec's split, for bench/run_sasrec.sh.

Reads an NCF split directory written by `fedrec data split FILE --loo --negatives 100`
(train.rating, test.rating, test.negative with dense ids, users.map/items.map) and writes
RecBole atomic data whose timestamp is each interaction's rank in fedrec's own order
(per user: training rows by (timestamp, item index), then the test row), so RecBole's
leave-one-out by time ('LS': 'valid_and_test', order 'TO') holds out exactly fedrec's
test item, and for validation the last training item (the cut bench/run_sasrec.sh tunes
on). RecBole trains its SASRec (its defaults unless overridden) with early stopping on
validation NDCG@10, then the best model is scored twice on test: by RecBole's own
evaluator (100 uniform negatives of its own draw: 'uni100') and on fedrec's candidates
(the test item and the 100 negatives of test.negative, the history being every
training item in fedrec's order), HR@10 and NDCG@10 with ties counted against the test
item as fedrec counts them. Prints one JSON line."""
import argparse, json, os, re, sys, time, tempfile, math, logging

ap = argparse.ArgumentParser()
ap.add_argument("split")
ap.add_argument("--epochs", type=int, default=200)
ap.add_argument("--stopping-step", type=int, default=10,
                help="early stopping: evaluations (not epochs) without a better validation NDCG@10")
ap.add_argument("--eval-step", type=int, default=1, help="validate every K epochs")
ap.add_argument("--loss", choices=["CE", "BPR"], default="CE",
                help="CE: RecBole's default, softmax over all items; BPR: one uniform negative per target "
                     "(closer to fedrec's BCE against one sampled negative)")
ap.add_argument("--anomaly", action="store_true",
                help="keep torch's anomaly detection on, as importing RecBole 1.2.1's sequential models "
                     "leaves it (sine.py calls torch.autograd.set_detect_anomaly(True) at import)")
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--max-len", type=int, default=50)
ap.add_argument("--seed", type=int, default=2020)
ap.add_argument("--work", default=None)
ap.add_argument("--from-checkpoint", default=None,
                help="no training: score this checkpoint of an earlier run (its best model on validation) on "
                     "fedrec's candidates (a run stopped before its budget ended)")
ap.add_argument("--resume", default=None,
                help="go on training from this checkpoint of an earlier run (RecBole's resume_checkpoint: "
                     "model, optimizer, epoch and early-stopping state; the file is updated in place with "
                     "each better model), e.g. a run its --time-budget stopped while validation still rose")
ap.add_argument("--time-budget", type=float, default=0,
                help="stop starting new epochs after this many seconds of fit (0: none); the best model "
                     "on validation so far is the one tested, and the output says the budget stopped it")
ap.add_argument("--max-batches", type=int, default=0,
                help="time only the first K minibatches of each epoch and scale to the epoch (speed only: "
                     "the model is then not trained on a whole epoch)")
args = ap.parse_args()

import torch
torch.set_num_threads(args.threads)
# RecBole 1.2.1 checkpoints hold numpy objects, which torch >= 2.6's torch.load refuses by
# default ("Unsupported operand"); they are our own files
_torch_load = torch.load
torch.load = lambda *a, **k: _torch_load(*a, **{**k, "weights_only": False})
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.model.sequential_recommender import SASRec
# RecBole 1.2.1's sequential_recommender/sine.py runs torch.autograd.set_detect_anomaly(True)
# when the package is imported, so every sequential model trains with autograd's anomaly
# mode: a NaN check of every backward output and a traceback recorded for every forward op.
# It is a debugging aid, not part of the model (same results, about 2x the CPU time): off.
torch.autograd.set_detect_anomaly(args.anomaly)
from recbole.trainer import Trainer
from recbole.utils import init_seed, init_logger

d = args.split
rows = {}
for line in open(os.path.join(d, "train.rating")):
    u, i, r, t = line.split("\t")[:4]
    rows.setdefault(int(u), []).append((int(t), int(i)))
test = {}
for line in open(os.path.join(d, "test.rating")):
    u, i = line.split("\t")[:2]
    test[int(u)] = int(i)
negs = {}
for line in open(os.path.join(d, "test.negative")):
    f = line.rstrip("\n").split("\t")
    u, i = f[0].strip("()").split(",")
    negs[int(u)] = [int(x) for x in f[1:] if x]

work = args.work or tempfile.mkdtemp(prefix="recbole-sas-")
os.makedirs(os.path.join(work, "fr"), exist_ok=True)
with open(os.path.join(work, "fr", "fr.inter"), "w") as f:
    f.write("user_id:token\titem_id:token\ttimestamp:float\n")
    for u, lst in rows.items():
        lst.sort()
        seq = [i for _, i in lst] + ([test[u]] if u in test else [])
        for k, i in enumerate(seq):
            f.write(f"{u}\t{i}\t{k}\n")

cfg = {
    "data_path": work, "dataset": "fr", "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id",
    "TIME_FIELD": "timestamp", "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
    "MAX_ITEM_LIST_LENGTH": args.max_len, "epochs": args.epochs, "stopping_step": args.stopping_step,
    "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user", "mode": "uni100"},
    "metrics": ["Hit", "NDCG"], "topk": [10], "valid_metric": "NDCG@10", "eval_step": args.eval_step,
    "loss_type": args.loss,
    "train_neg_sample_args": None if args.loss == "CE" else {"distribution": "uniform", "sample_num": 1},
    "use_gpu": False, "device": "cpu", "seed": args.seed, "reproducibility": True, "show_progress": False,
    "checkpoint_dir": os.path.join(work, "saved"), "worker": 0, "log_wandb": False,
}
config = Config(model="SASRec", config_dict=cfg)
init_seed(config["seed"], config["reproducibility"])
init_logger(config)
times, curve = [], []
class Timing(logging.Handler):
    def emit(self, rec):
        msg = rec.getMessage()
        m = re.search(r"epoch (\d+) training \[time: ([0-9.]+)s", msg)
        if m: times.append(float(m.group(2)))
        m = re.search(r"hit@10 : ([0-9.]+)\s+ndcg@10 : ([0-9.]+)", msg)
        if m and "valid result" in msg:
            curve.append((epoch0 + len(cpu_times), float(m.group(1)), float(m.group(2))))
            note(f"valid after epoch {epoch0 + len(cpu_times)}: HR@10 {m.group(1)} NDCG@10 {m.group(2)}")
logging.getLogger().addHandler(Timing())
def note(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
note("dataset")
dataset = create_dataset(config)
train_data, valid_data, test_data = data_preparation(config, dataset)
note("model")
model = SASRec(config, train_data.dataset).to("cpu")
trainer = Trainer(config, model)
# per-epoch wall and CPU seconds of the training pass alone (not evaluation)
cpu_times, wall_times = [], []
_train_epoch = trainer._train_epoch
class OutOfTime(Exception): pass
def timed_epoch(*a, **k):
    if args.time_budget and time.time() - t0 > args.time_budget:
        raise OutOfTime()
    c0, w0 = time.process_time(), time.time()
    r = _train_epoch(*a, **k)
    cpu_times.append(time.process_time() - c0)
    wall_times.append(time.time() - w0)
    note(f"epoch {epoch0 + len(cpu_times)}: {wall_times[-1]:.1f} s wall, {cpu_times[-1]:.1f} s cpu, loss {r}"
         f" ({args.max_batches or 'all'} of {n_batches} batches)")
    return r
trainer._train_epoch = timed_epoch
n_batches = len(train_data)
if args.max_batches:
    class Head:
        def __init__(self, it, k): self.it, self.k = it, k
        def __iter__(self):
            for j, b in enumerate(self.it):
                if j >= self.k: break
                yield b
        def __len__(self): return min(self.k, len(self.it))
        def __getattr__(self, a): return getattr(self.it, a)
    train_data = Head(train_data, args.max_batches)
    scale = n_batches / min(args.max_batches, n_batches)
else:
    scale = 1.0
if args.from_checkpoint:
    ck = torch.load(args.from_checkpoint, map_location="cpu")
    model.load_state_dict(ck["state_dict"])
    model.load_other_parameter(ck.get("other_parameter"))
epoch0 = 0
if args.resume:
    trainer.resume_checkpoint(args.resume)
    epoch0 = trainer.start_epoch  # epochs already trained in the earlier run
    note(f"resumed after epoch {epoch0} (best validation NDCG@10 so far {trainer.best_valid_score})")
t0 = time.time()
stopped_by_budget = False
if args.from_checkpoint:
    best_valid_result, test_result = {}, {}
    best_epoch = ck["epoch"] + 1  # RecBole numbers epochs from 0
else:
    try:
        best_valid, best_valid_result = trainer.fit(train_data, valid_data, saved=True, show_progress=False)
    except OutOfTime:
        stopped_by_budget = True
        best_valid_result = trainer.best_valid_result
    # the evaluated epoch with the best validation NDCG@10 (the model tested): the saved
    # checkpoint's, which after --resume may be the earlier run's
    best_epoch = torch.load(trainer.saved_model_file, map_location="cpu")["epoch"] + 1
    test_result = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
fit_s = time.time() - t0

# the same split: RecBole's own test targets are fedrec's test items, user by user
tf = test_data.dataset.inter_feat
rb_test = dict(zip(dataset.id2token("user_id", tf["user_id"].numpy()).tolist(),
                   dataset.id2token("item_id", tf["item_id"].numpy()).tolist()))
same_test = sum(1 for u, i in test.items() if rb_test.get(str(u)) == str(i))

# fedrec's candidates
tok = dataset.field2token_id["item_id"]
model.eval()
L = args.max_len
hits = ndcg = n = 0
with torch.no_grad():
    for u, lst in rows.items():
        if u not in test or u not in negs: continue
        seq = [tok[str(i)] for _, i in lst][-L:]
        cand = [test[u]] + negs[u]
        cid = torch.tensor([tok.get(str(i), 0) for i in cand])
        item_seq = torch.zeros(1, L, dtype=torch.long)
        item_seq[0, :len(seq)] = torch.tensor(seq)
        out = model.forward(item_seq, torch.tensor([len(seq)]))
        s = (model.item_embedding(cid) @ out[0]).tolist()
        rank = sum(1 for x in s[1:] if x >= s[0])
        n += 1
        if rank < 10:
            hits += 1
            ndcg += 1 / math.log2(rank + 2)
print(json.dumps({
    "recbole_valid": {k: float(v) for k, v in (best_valid_result or {}).items()},
    "recbole_test_uni100": {k: float(v) for k, v in test_result.items()},
    "hr@10": hits / n, "ndcg@10": ndcg / n, "users": n,
    "recbole_test_is_fedrec_test": f"{same_test}/{len(test)}",
    "epochs": epoch0 + len(cpu_times), "resumed_after_epoch": epoch0, "seconds_per_epoch": scale * sum(wall_times) / max(len(wall_times), 1),
    "cpu_seconds_per_epoch": scale * sum(cpu_times) / max(len(cpu_times), 1), "fit_seconds": fit_s,
    "batches_timed": args.max_batches or n_batches, "batches_per_epoch": n_batches,
    "threads": args.threads, "max_len": args.max_len, "stopped_by_budget": stopped_by_budget,
    "best_epoch": best_epoch, "loss": args.loss, "eval_step": args.eval_step,
    "stopping_step": args.stopping_step, "anomaly_mode": args.anomaly,
    "valid_curve": [{"epoch": e, "hit@10": h, "ndcg@10": g} for e, h, g in curve],
}))
