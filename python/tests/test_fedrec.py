"""The Python package against the fedrec command and against independent computations.

FEDREC_BIN names the fedrec program (the project's test command sets it; default:
build/fedrec in the source tree)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time

import numpy as np
import pytest

import fedrec

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FEDREC_BIN = os.environ.get("FEDREC_BIN", os.path.join(ROOT, "build", "fedrec"))


def cli(*args: str) -> subprocess.CompletedProcess:
    if not os.path.exists(FEDREC_BIN):
        pytest.skip(f"no fedrec program at {FEDREC_BIN} (set FEDREC_BIN)")
    return subprocess.run([FEDREC_BIN, *args], capture_output=True, text=True, check=True)


def ratings_file(path: str, users: int = 60, items: int = 80, per_user: int = 12, seed: int = 4) -> str:
    """A small explicit ratings file: user item rating time, tab separated."""
    rng = np.random.default_rng(seed)
    with open(path, "w") as f:
        for u in range(users):
            for j, i in enumerate(rng.choice(items, per_user, replace=False)):
                f.write(f"{u + 1}\t{i + 1}\t{rng.integers(1, 6)}\t{1000 + 10 * u + j}\n")
    return path


# ------------------------------------------------------------------ the CLI and Python agree

@pytest.mark.parametrize("opts", [
    {"rounds": 2},  # federated mf on the built-in synthetic set: the command's defaults otherwise
    {"model": "neumf", "rounds": 2, "seed": 3, "clients_per_round": 50},
    {"model": "bpr", "centralized": True, "epochs": 2, "seed": 7},
])
def test_python_and_cli_write_the_same_model_file(tmp_path, opts):
    data = ratings_file(str(tmp_path / "r.tsv")) if "model" in opts else None
    argv = ["train", "--quiet", "--out", str(tmp_path / "cli.frm")]
    if data:
        argv += ["--data", data]
    for k, v in opts.items():
        argv += [f"--{k.replace('_', '-')}"] + ([] if v is True else [str(v)])
    cli(*argv)
    m = fedrec.train(data=data, **opts)
    m.save(tmp_path / "py.frm")
    a, b = (tmp_path / "cli.frm").read_bytes(), (tmp_path / "py.frm").read_bytes()
    assert len(a) > 1000 and a == b
    # the metrics of the last step are those the command reports for the saved model
    ev = json.loads(cli("eval", "--model", str(tmp_path / "py.frm"), "--json").stdout)
    mine = m.evaluate()
    for key in ("rmse", "hr@10", "ndcg@10"):
        if key in mine:
            assert ev[key] == pytest.approx(mine[key], rel=1e-12)


def test_recommend_matches_the_cli_and_excludes_seen_items(tmp_path):
    data = ratings_file(str(tmp_path / "r.tsv"))
    m = fedrec.train(data=data, model="bpr", centralized=True, epochs=3)
    m.save(tmp_path / "m.frm")
    items, scores = m.recommend([5, 17], k=7)
    assert items.shape == (2, 7) and scores.shape == (2, 7) and items.dtype == np.int64
    for row, user in enumerate([5, 17]):
        out = json.loads(cli("recommend", "--model", str(tmp_path / "m.frm"), "--user", str(user), "-k", "7",
                             "--json").stdout)
        assert [x["item"] for x in out["items"]] == items[row].tolist()
        assert np.allclose([x["score"] for x in out["items"]], scores[row], rtol=1e-5)
        assert (np.diff(scores[row]) <= 0).all()
    # the training items of user 5, from the file by hand (leave-one-out holds out its latest)
    rows = [ln.split("\t") for ln in open(data)]
    mine = sorted((int(t), int(i)) for u, i, r, t in rows if u == "5")
    seen = {i for _, i in mine[:-1]}
    assert not seen & set(items[0].tolist())
    # one user: 1-D arrays
    one_items, one_scores = m.recommend(5, k=7)
    assert one_items.tolist() == items[0].tolist()
    with pytest.raises(KeyError):
        m.recommend(999)


def test_load_reads_the_cli_model_file(tmp_path):
    data = ratings_file(str(tmp_path / "r.tsv"))
    cli("train", "--quiet", "--data", data, "--rounds", "2", "--out", str(tmp_path / "c.frm"))
    m = fedrec.load(tmp_path / "c.frm")
    assert m.kind == "mf"
    ev = json.loads(cli("eval", "--model", str(tmp_path / "c.frm"), "--json").stdout)
    assert m.evaluate()["rmse"] == pytest.approx(ev["rmse"], rel=1e-12)
    m.save(tmp_path / "again.frm")
    assert (tmp_path / "again.frm").read_bytes() == (tmp_path / "c.frm").read_bytes()


# ------------------------------------------------------------------ raw ids

def _frame_rows(n_users=30, n_items=40, per_user=8, seed=2):
    rng = np.random.default_rng(seed)
    u, i, r, t = [], [], [], []
    for a in range(n_users):
        for j, b in enumerate(rng.choice(n_items, per_user, replace=False)):
            u.append(a), i.append(b), r.append(float(rng.integers(1, 6))), t.append(100 * a + j)
    return np.array(u), np.array(i), np.array(r), np.array(t)


def test_string_and_int64_ids_map_back_exactly():
    import pandas as pd
    u, i, r, t = _frame_rows()
    i = pd.factorize(i)[0]  # items numbered in order of first appearance: string ids are numbered so
    big = np.int64(2**62)
    ustr = np.array([f"usér {x} ☃" for x in u], dtype=object)  # any text, kept exactly
    istr = np.array([f"item/{x:03d}" for x in i], dtype=object)
    frames = {
        "int": pd.DataFrame({"user": u, "item": i, "rating": r, "time": t}),
        "int64": pd.DataFrame({"user": u.astype(np.int64) * 7 + big, "item": i.astype(np.int64) * 3 - big,
                               "rating": r, "time": t}),
        "str": pd.DataFrame({"user_id": ustr, "item_id": istr, "rating": r, "timestamp": t}),
    }
    params = {}
    for name, df in frames.items():
        m = fedrec.train(data=df, model="bpr", centralized=True, epochs=2)
        ucol, icol = df.columns[0], df.columns[1]
        assert set(m.user_ids.tolist()) == set(df[ucol].tolist())
        assert set(m.item_ids.tolist()) == set(df[icol].tolist())
        if name != "str":
            assert m.user_ids.dtype == np.int64 and m.item_ids.dtype == np.int64
        users = df[ucol].unique()[:5]
        items, scores = m.recommend(users, k=5)
        train_part, _ = fedrec.Dataset.from_dataframe(df).split("loo", seed=1)
        seen = {}
        for a, b in zip(train_part.users.tolist(), train_part.items.tolist()):
            seen.setdefault(a, set()).add(b)
        for row, user in enumerate(users.tolist()):
            got = items[row].tolist()
            assert set(got) <= set(df[icol].tolist())
            assert not set(got) & seen[user]  # the user's training items, mapped back, are left out
        if name == "int64":
            assert isinstance(items[0, 0], np.int64) and items.min() < -big + 3 * 40
        params[name] = m.params.copy()
    # the same interactions under any ids: the same dense numbering here, so the same model
    assert np.array_equal(params["int"], params["int64"])
    assert np.array_equal(params["int"], params["str"])


def test_dataframe_equals_the_same_rows_from_a_file(tmp_path):
    import pandas as pd
    data = ratings_file(str(tmp_path / "r.tsv"))
    df = pd.read_csv(data, sep="\t", names=["user", "item", "rating", "time"])
    a = fedrec.train(data=data, rounds=2)
    b = fedrec.train(data=df, rounds=2)
    assert np.array_equal(a.params, b.params)
    assert a.evaluate() == b.evaluate()
    b.save(tmp_path / "df.frm")  # a model of data in memory loads again with its data
    c = fedrec.load(tmp_path / "df.frm", data=df)
    assert c.evaluate() == b.evaluate()


def test_mixed_ids_number_as_the_file_reader_does(tmp_path):
    # string users, integer items: the reader takes both columns as strings in order of
    # first appearance, and so must the package, or the same rows train another model;
    # the library keeps the strings as for the file, so the command line accepts the model
    import pandas as pd
    rng = np.random.default_rng(3)
    n = 1500
    df = pd.DataFrame({"user": [f"u{x}" for x in rng.integers(0, 60, n)], "item": rng.integers(0, 90, n),
                       "rating": rng.integers(1, 6, n).astype(float)})
    path = tmp_path / "mixed.tsv"
    df.to_csv(path, sep="\t", header=False, index=False)
    a = fedrec.train(data=str(path), model="mf", rounds=2)
    b = fedrec.train(data=df, model="mf", rounds=2)
    assert np.array_equal(a.params, b.params)
    assert b.item_ids.tolist() == list(dict.fromkeys(df["item"].tolist()))  # first appearance
    for name, frame in (("mixed", df), ("strings", df.assign(item=[f"i{x}" for x in df["item"]]))):
        path = tmp_path / f"{name}.tsv"
        frame.to_csv(path, sep="\t", header=False, index=False)
        m = fedrec.train(data=frame, model="mf", rounds=2)
        m.save(tmp_path / f"{name}.frm")
        out = subprocess.run([os.environ["FEDREC_BIN"], "eval", "--model", str(tmp_path / f"{name}.frm"), "--data",
                              str(path), "--json"], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["rmse"] == pytest.approx(m.evaluate()["rmse"], rel=1e-6)


# ------------------------------------------------------------------ errors

def test_bad_file_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("1\t1\t5\t10\n2\t2\t4\t11\n3\tx y\t3\t12\n")
    for call in (lambda: fedrec.Dataset.from_file(bad), lambda: fedrec.train(data=str(bad), rounds=1)):
        with pytest.raises(fedrec.FedrecError) as e:
            call()
        assert f"{bad}:3: item id \"x y\" is not a number" in str(e.value)
        assert e.value.filename == str(bad) and e.value.line == 3


def test_options_are_the_commands():
    with pytest.raises(fedrec.UsageError, match="--rounds"):
        fedrec.train(rounds=0)
    with pytest.raises(fedrec.UsageError, match="no-such-option"):
        fedrec.train(no_such_option=3)
    with pytest.raises(fedrec.UsageError, match="--epochs applies to --centralized"):
        fedrec.train(epochs=3)


# ------------------------------------------------------------------ callback, GIL, Ctrl-C

def test_callback_gets_metrics_and_can_stop():
    seen = []

    def cb(m):
        seen.append(m)
        return m["round"] == 2

    m = fedrec.train(rounds=10, callback=cb)
    assert [s["round"] for s in seen] == [1, 2]
    assert "rmse" in seen[0] and seen[0]["clients"] == 2000
    assert m.summary["stop"] == "callback" and m.summary["completed"] == 2
    assert m.history == seen


def test_training_releases_the_gil():
    # The callback runs between rounds; it marks the library's side as "in C" when it
    # returns and "in Python" when it is entered. Another thread notes the rounds during
    # which it ran while the library was training. Were the GIL held by the training
    # call, that thread could not run a bytecode then (it would see no round at all,
    # short of a switch in the callback's last instruction).
    state = {"in_c": False, "round": 0}
    rounds_seen = set()
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            if state["in_c"]:
                rounds_seen.add(state["round"])

    def cb(m):
        state["in_c"] = False
        state["round"] = m["round"]
        state["in_c"] = True

    th = threading.Thread(target=spin)
    th.start()
    try:
        fedrec.train(rounds=5, callback=cb)
    finally:
        stop.set()
        th.join()
    assert len(rounds_seen - {0, 5}) >= 2, rounds_seen  # rounds 2..5 ran while rounds 1..4 were seen


def test_ctrl_c_stops_after_the_round_in_progress():
    rounds = []

    def cb(m):
        rounds.append(m["round"])
        if m["round"] == 1:  # a real SIGINT, from another thread while the library trains
            threading.Timer(0.01, os.kill, (os.getpid(), signal.SIGINT)).start()
            time.sleep(0.0)

    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        fedrec.train(rounds=40, callback=cb)
    assert 1 <= len(rounds) <= 3, rounds
    assert time.monotonic() - t0 < 60
    # the package is usable afterwards (the lock and standard error were given back)
    assert fedrec.train(rounds=1).summary["completed"] == 1


def test_recommender_estimator_and_dataset_split():
    u, i, r, t = _frame_rows()
    ds = fedrec.Dataset.from_arrays(u, i, r, t)
    rec = fedrec.Recommender(model="bias", centralized=True).fit(ds)
    direct = fedrec.train(data=ds, model="bias", centralized=True)
    assert rec.evaluate() == direct.evaluate() and "rmse" in direct.evaluate()
    # the split the run used is the library's: its test part is each user's latest interaction
    train_part, test_part = ds.split("loo", seed=1)
    assert len(train_part) + len(test_part) == len(ds) and len(test_part) == ds.n_users
    latest = {a: max((tt, b) for aa, b, tt in zip(u, i, t) if aa == a)[1] for a in set(u.tolist())}
    assert dict(zip(test_part.users.tolist(), test_part.items.tolist())) == latest


def test_dataset_repr_counts_take_the_singular_for_one():
    one = fedrec.Dataset.from_arrays([7], [9], [4.0])
    assert repr(one).endswith(": 1 user, 1 item, 1 interaction>"), repr(one)
    two = fedrec.Dataset.from_arrays([7, 8], [9, 9], [4.0, 3.0])
    assert repr(two).endswith(": 2 users, 1 item, 2 interactions>"), repr(two)
