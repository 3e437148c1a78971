/* The `mpi` runtime: one federation run by the ranks of an Open MPI job (fr_run_mpi in
 * fedrec/runtime.h). Every rank builds the same sim from the same config (src/runtime/
 * sim.c: the round controller and the client step are the same code as in one process;
 * a rank > 0 may hold only its clients' interactions, fr_mpi_shard, and takes rank 0's
 * data fingerprint for checkpoints);
 * rank r runs the sampled clients c with c % N == r (a stable rule: a client stays on its
 * rank, with its private rows, from round to round), then the ranks meet their sums.
 *
 * Rank 0 leads: it runs the training loop (fr_loop_run: evaluation, the callback,
 * checkpoints, resume, stop conditions) and tells the others what comes next by
 * broadcasting one command (a round, gather the private rows, save, load, stop). The
 * others serve commands until told to stop.
 *
 * Invariants:
 *   - Bit-identity with the simulator: each rank's controller samples the same clients
 *     and makes the same TASK (same seed, same model); each adds its own clients' w·Δ as
 *     64-bit integers (fixed point, fr_result_quantize); MPI_Allreduce with MPI_SUM on
 *     MPI_UINT64_T adds them modulo 2^64. Integer addition modulo 2^64 is associative
 *     and commutative, so whatever tree or ring MPI's algorithm uses, and however the
 *     clients are split among ranks, every rank holds the very integers one process that
 *     took every result would hold. Each rank then ends the round itself (the same
 *     deterministic division and strategy step on the same integers): the new global
 *     model reaches every rank through that one reduction, with the strategy's moments,
 *     without a second broadcast of the model. The per-position loss sums are doubles,
 *     but each position has one nonzero addend (x + 0.0 is exact), so they too are exact.
 *   - Sparse item rows: before the values, the ranks OR a byte per "unit" (a dense tensor,
 *     or one row of an item table) that says whether any of their clients touched it
 *     (MPI_Allreduce, MPI_BOR). The union is the same on every rank, so each packs the
 *     union's rows in the same order and one MPI_Allreduce(MPI_SUM) over the packed
 *     words adds them position by position. Rows no rank touched are zero everywhere and
 *     never travel. When the union holds more than half of the shared words, the dense
 *     prefix is reduced as it is (packing would cost more than it saves).
 *   - Failure: a rank whose clients failed says so in the reduction (MPI_MAXLOC on the
 *     failure flag), then sends its message from that rank; every rank aborts the round
 *     and rank 0's loop returns "round R: rank N: ...". A rank that dies is Open MPI's to
 *     notice: mpirun ends the job (it kills the other ranks and names the rank that died);
 *     the last checkpoint holds the last completed round, and --resume starts from it.
 *   - Private rows: each rank keeps its own clients' rows current (a rank > 0 only those:
 *     a compact store, user u at row u / N; rank 0 the whole store); rank 0 gathers them
 *     (MPI_Gatherv of each rank's own rows, in user order, as their bits: -0.0 and NaN
 *     included) only when the whole model is needed: evaluation, a checkpoint, the final
 *     model; on a resume rank 0 loads the checkpoint and sends a rank > 0 its head and its
 *     own rows (MPI_Scatterv), never the whole file.
 * The library never prints and never exits: errors come back to the caller. */
#include <limits.h>
#include <mpi.h>
#include <stdio.h>

#include "core/core.h"
#include "fedrec/runtime.h"
#include "fl/fl_internal.h"
#include "runtime/runtime_internal.h"

enum { CMD_ROUND = 1, CMD_MODEL, CMD_SAVE, CMD_LOAD, CMD_STOP };

typedef struct mpi_run {
    fr_sim *sim;
    MPI_Comm comm;
    int rank, size;
    /* units of the shared prefix: a dense tensor or an item-table row */
    size_t n_units;
    uint64_t *u_off;        /* [n_units] offset into the shared prefix */
    uint32_t *u_len;        /* [n_units] its floats */
    int64_t *u_row;         /* [n_units] row_norm: its index into the row weights, else -1 */
    uint8_t *touched;       /* [n_units] */
    uint64_t *pack;         /* packed words of the touched units */
    size_t pack_cap;
    uint8_t *status;        /* [n_clients] the round's status bytes */
    uint32_t n_users;       /* the data's users (every rank's: a shard keeps the ids) */
    uint32_t *owner;        /* [n_users] silos: the rank keeping each user's private rows
                               (a user each: user u's own client's rank, u % size, no array) */
    bool silos;
    uint32_t *gbuf;         /* a gather chunk */
    size_t gbuf_cap;
    int *gcount, *gdispl, *gat; /* [size] the gather's counts, displacements, cursors */
    fr_mpi_stats stats;
} mpi_run;

/* ------------------------------------------------------------------ init */

static bool mpi_up(void) {
    int init = 0, fin = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    return init && !fin;
}

fr_err fr_mpi_init(int *rank, int *size) {
    if (rank) *rank = 0;
    if (size) *size = 1;
    if (!mpi_up()) {
        int got = 0;
        /* only the calling thread talks to MPI; the pool's workers never do */
        if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &got) != MPI_SUCCESS)
            return fri_fail(FR_ERR_IO, "MPI_Init failed");
    }
    int r = 0, n = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    if (rank) *rank = r;
    if (size) *size = n;
    return FR_OK;
}

void fr_mpi_finalize(void) {
    if (mpi_up()) MPI_Finalize();
}

void fr_mpi_abort(int code) {
    if (mpi_up()) MPI_Abort(MPI_COMM_WORLD, code);
}

bool fr_mpi_available(void) { return true; }

fr_err fr_mpi_shard(const fr_run_config *c, const fr_dataset *train, fr_dataset **out) {
    *out = NULL;
    if (!mpi_up()) return fri_fail(FR_ERR_STATE, "fr_mpi_shard: MPI is not initialised (fr_mpi_init)");
    int r = 0, n = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    if (r == 0 || n == 1 || !train || c->centralized || c->partition != FR_PARTITION_USER || c->fl.decoys > 0)
        return FR_OK;
    uint32_t nu = fr_dataset_n_users(train), k = 0;
    uint32_t *users = fri_malloc(((size_t)nu / (uint32_t)n + 1) * sizeof *users);
    if (!users) return FR_ERR_NOMEM;
    for (uint32_t u = (uint32_t)r; u < nu; u += (uint32_t)n) users[k++] = u;
    fr_err e = fr_dataset_select_users(out, train, users, k);
    fri_free(users);
    return e;
}

/* ------------------------------------------------------------------ collectives in chunks */

#define CHUNK ((size_t)1 << 28) /* elements per call: counts are ints */

/* x[0, n) of elements of `size` bytes and type t reduced in place with op on every rank,
 * in calls of at most CHUNK elements */
static void allreduce(void *x, size_t n, size_t size, MPI_Datatype t, MPI_Op op, MPI_Comm comm) {
    for (size_t at = 0; at < n; at += CHUNK) {
        size_t c = n - at < CHUNK ? n - at : CHUNK;
        MPI_Allreduce(MPI_IN_PLACE, (char *)x + at * size, (int)c, t, op, comm);
    }
}

static void allreduce_u64(uint64_t *x, size_t n, MPI_Comm comm) {
    allreduce(x, n, sizeof *x, MPI_UINT64_T, MPI_SUM, comm);
}
static void allreduce_f64(double *x, size_t n, MPI_Comm comm) { allreduce(x, n, sizeof *x, MPI_DOUBLE, MPI_SUM, comm); }
static void allreduce_bor(uint8_t *x, size_t n, MPI_Comm comm) { allreduce(x, n, sizeof *x, MPI_UINT8_T, MPI_BOR, comm); }

static void bcast_bytes(uint8_t *x, size_t n, MPI_Comm comm) {
    for (size_t at = 0; at < n; at += CHUNK) {
        size_t c = n - at < CHUNK ? n - at : CHUNK;
        MPI_Bcast(x + at, (int)c, MPI_BYTE, 0, comm);
    }
}

/* Every rank's error meets: FR_OK if none failed, else the lowest failing rank's code and
 * message on every rank ("rank N: ..."). local's message is this thread's fr_errmsg(). */
static fr_err agree(mpi_run *m, fr_err local) {
    struct { int failed, rank; } in = {local != FR_OK, m->rank}, out;
    MPI_Allreduce(&in, &out, 1, MPI_2INT, MPI_MAXLOC, m->comm);
    if (!out.failed) return FR_OK;
    struct { int code; char msg[1024]; } w;
    memset(&w, 0, sizeof w);
    if (m->rank == out.rank) {
        w.code = (int)local;
        snprintf(w.msg, sizeof w.msg, "%s", fr_errmsg());
    }
    MPI_Bcast(&w, (int)sizeof w, MPI_BYTE, out.rank, m->comm);
    if (m->size == 1) return fri_fail((fr_err)w.code, "%s", w.msg);
    return fri_fail((fr_err)w.code, "rank %d: %s", out.rank, w.msg);
}

/* ------------------------------------------------------------------ the round's sums */

static fr_err make_units(mpi_run *m) {
    const fr_round *ctl = fr_sim_controller(m->sim);
    const fr_model *g = fr_round_model(ctl);
    bool rows = fr_round_fl_config(ctl)->row_norm;
    size_t n = 0;
    for (int t = 0; t < fr_model_n_tensors(g); t++) {
        const fr_tensor *tt = fr_model_tensor(g, t);
        if (tt->kind == FR_TENSOR_DENSE) n++;
        else if (tt->kind == FR_TENSOR_ITEM_TABLE) n += tt->rows;
    }
    m->u_off = fri_malloc((n ? n : 1) * sizeof *m->u_off);
    m->u_len = fri_malloc((n ? n : 1) * sizeof *m->u_len);
    m->u_row = fri_malloc((n ? n : 1) * sizeof *m->u_row);
    m->touched = fri_malloc(n ? n : 1);
    if (!m->u_off || !m->u_len || !m->u_row || !m->touched) return FR_ERR_NOMEM;
    size_t i = 0, table = 0, n_items = fr_round_model_config(ctl)->n_items;
    for (int t = 0; t < fr_model_n_tensors(g); t++) {
        const fr_tensor *tt = fr_model_tensor(g, t);
        if (tt->kind == FR_TENSOR_DENSE) {
            m->u_off[i] = tt->offset;
            m->u_len[i] = tt->rows * tt->cols;
            m->u_row[i++] = -1;
        } else if (tt->kind == FR_TENSOR_ITEM_TABLE) {
            for (uint32_t r = 0; r < tt->rows; r++, i++) {
                m->u_off[i] = tt->offset + (uint64_t)r * tt->cols;
                m->u_len[i] = tt->cols;
                m->u_row[i] = rows ? (int64_t)(table * n_items + r) : -1;
            }
            table++;
        }
    }
    m->n_units = n;
    return FR_OK;
}

static bool any_nonzero(const int64_t *x, size_t n) {
    int64_t o = 0;
    for (size_t i = 0; i < n; i++) o |= x[i];
    return o != 0;
}

/* The sim's reduce hook: runs on every rank with the round open. */
static fr_err reduce(void *ctx, fr_round *ctl, fr_err local) {
    mpi_run *m = ctx;
    fri_round_sums s;
    if (!local) local = fri_round_fold(ctl, &s);
    fr_err e = agree(m, local);
    if (e) return e;
    /* which units anyone touched */
    for (size_t u = 0; u < m->n_units; u++)
        m->touched[u] = any_nonzero(s.acc + m->u_off[u], m->u_len[u]) || (m->u_row[u] >= 0 && s.roww[m->u_row[u]]);
    allreduce_bor(m->touched, m->n_units, m->comm);
    size_t words = 0;
    for (size_t u = 0; u < m->n_units; u++)
        if (m->touched[u]) words += m->u_len[u] + (m->u_row[u] >= 0);
    m->stats.rounds++;
    if (2 * words > s.n_shared + s.n_roww) { /* dense enough: the prefix as it is */
        allreduce_u64((uint64_t *)s.acc, s.n_shared, m->comm);
        if (s.roww) allreduce_u64(s.roww, s.n_roww, m->comm);
        m->stats.words_reduced += s.n_shared + s.n_roww;
        m->stats.dense_rounds++;
    } else {
        if (words + 1 > m->pack_cap) {
            uint64_t *p = fri_realloc(m->pack, (words + 1) * sizeof *p);
            e = p ? FR_OK : FR_ERR_NOMEM;
            if (!e) { m->pack = p; m->pack_cap = words + 1; }
        }
        if ((e = agree(m, e))) return e;
        size_t at = 0;
        for (size_t u = 0; u < m->n_units; u++) {
            if (!m->touched[u]) continue;
            memcpy(m->pack + at, s.acc + m->u_off[u], m->u_len[u] * sizeof *m->pack);
            at += m->u_len[u];
            if (m->u_row[u] >= 0) m->pack[at++] = s.roww[m->u_row[u]];
        }
        allreduce_u64(m->pack, words, m->comm);
        at = 0;
        for (size_t u = 0; u < m->n_units; u++) {
            if (!m->touched[u]) continue;
            memcpy(s.acc + m->u_off[u], m->pack + at, m->u_len[u] * sizeof *m->pack);
            at += m->u_len[u];
            if (m->u_row[u] >= 0) s.roww[m->u_row[u]] = m->pack[at++];
        }
        m->stats.words_reduced += words;
    }
    allreduce_u64(s.wsum, 1, m->comm);
    allreduce_u64(s.examples, s.k, m->comm);
    allreduce_u64(s.up, s.k, m->comm);
    allreduce_f64(s.loss, s.k, m->comm);
    fri_round_status_get(ctl, m->status);
    allreduce_bor(m->status, s.k, m->comm);
    return fri_round_status_set(ctl, m->status);
}

/* ------------------------------------------------------------------ private rows, checkpoints */

/* The gather's and the scatter's buffers (a chunk, per-rank counts), made once. */
static fr_err gather_buffers(mpi_run *m) {
    fr_err e = FR_OK;
    if (!m->owner && m->silos) {
        if ((m->owner = fri_malloc((size_t)(m->n_users ? m->n_users : 1) * sizeof *m->owner)))
            fri_sim_owners(m->sim, (uint32_t)m->size, m->owner);
        else e = FR_ERR_NOMEM;
    }
    if (!e && !m->gbuf) {
        m->gbuf_cap = (size_t)1 << 22;
        if (!(m->gbuf = fri_malloc(m->gbuf_cap * sizeof *m->gbuf))) e = FR_ERR_NOMEM;
    }
    if (!e && !m->gcount) {
        m->gcount = fri_malloc((size_t)m->size * sizeof *m->gcount);
        m->gdispl = fri_malloc((size_t)m->size * sizeof *m->gdispl);
        m->gat = fri_malloc((size_t)m->size * sizeof *m->gat);
        if (!m->gcount || !m->gdispl || !m->gat) e = FR_ERR_NOMEM;
    }
    return agree(m, e);
}

/* Rank 0's model gets every rank's current private rows (a collective). Rank 0 keeps the
 * whole store (evaluation, checkpoints and the model file need every row); a rank > 0
 * keeps only its own clients' rows (fri_sim_create_share's compact store) and sends them
 * through fri_sim_private_row.
 *
 * MPI_Gatherv, in chunks of users [u0, u0 + per): each rank > 0 packs the rows it owns in
 * the chunk, in user order, and rank 0 receives each rank's run at its own displacement,
 * then deals them to their users (the owner of user u: u % size, or the silos' owner
 * table, which every rank computes alike, so counts need no exchange). Every row crosses
 * the network once, to rank 0, as its bits (MPI_UINT32_T, no arithmetic: -0.0 and NaN
 * unchanged); rank 0 sends nothing (its rows are in place). A reduction (MPI_BOR of each
 * rank's rows with zeros elsewhere, as before) made every rank send a whole chunk, and its
 * tree passes partial results through intermediate ranks: (size - 1) whole tables in all
 * instead of one. Point-to-point receives would do the same as Gatherv with more code. */
static fr_err gather_private(mpi_run *m) {
    fr_model *full = fr_sim_model(m->sim);
    if (m->size == 1) return FR_OK;
    float *p = fr_model_params(full);
    fr_err e = gather_buffers(m);
    if (e) return e;
    for (int t = 0; t < fr_model_n_tensors(full); t++) {
        const fr_tensor *tt = fr_model_tensor(full, t);
        if (tt->kind != FR_TENSOR_USER_TABLE) continue;
        size_t cols = tt->cols ? tt->cols : 1, per = m->gbuf_cap / cols;
        if (per == 0) per = 1; /* cols above the buffer: cannot happen (dims <= 4096) */
        for (size_t u0 = 0; u0 < m->n_users; u0 += per) {
            size_t nu = m->n_users - u0 < per ? m->n_users - u0 : per;
            for (int r = 0; r < m->size; r++) m->gcount[r] = 0;
            for (size_t j = 0; j < nu; j++) {
                uint32_t o = m->silos ? m->owner[u0 + j] : (uint32_t)((u0 + j) % (size_t)m->size);
                if (o != 0) m->gcount[o] += (int)tt->cols;
            }
            int at = 0;
            for (int r = 0; r < m->size; r++) { m->gdispl[r] = at; at += m->gcount[r]; }
            uint32_t *b = m->gbuf;
            int mine = 0;
            if (m->rank > 0) { /* its rows of the chunk, in user order */
                for (size_t j = 0; j < nu; j++) {
                    uint32_t o = m->silos ? m->owner[u0 + j] : (uint32_t)((u0 + j) % (size_t)m->size);
                    if (o != (uint32_t)m->rank) continue;
                    const float *row = fri_sim_private_row(m->sim, t, (uint32_t)(u0 + j));
                    if (row) memcpy(b + mine, row, tt->cols * sizeof *row);
                    else memset(b + mine, 0, tt->cols * sizeof *b); /* cannot happen: it owns the user */
                    mine += (int)tt->cols;
                }
            }
            MPI_Gatherv(m->rank == 0 ? MPI_IN_PLACE : b, mine, MPI_UINT32_T, b, m->gcount, m->gdispl, MPI_UINT32_T,
                        0, m->comm);
            if (m->rank != 0) continue;
            for (int r = 0; r < m->size; r++) m->gat[r] = m->gdispl[r];
            for (size_t j = 0; j < nu; j++) {
                uint32_t o = m->silos ? m->owner[u0 + j] : (uint32_t)((u0 + j) % (size_t)m->size);
                if (o == 0) continue;
                memcpy(p + tt->offset + (u0 + j) * tt->cols, b + m->gat[o], tt->cols * sizeof *b);
                m->gat[o] += (int)tt->cols;
            }
        }
    }
    return FR_OK;
}

/* The reverse of the gather, for a resume: rank 0 (its whole store loaded) sends each rank
 * > 0 its own users' rows (u % size == rank, a user each), MPI_Scatterv in chunks of users:
 * each row crosses the network once, to its owner. */
static fr_err scatter_private(mpi_run *m) {
    fr_err e = gather_buffers(m);
    if (e) return e;
    const fr_model *full = fr_sim_model(m->sim);
    uint32_t n = (uint32_t)m->size;
    for (int t = 0; t < fr_model_n_tensors(full); t++) {
        const fr_tensor *tt = fr_model_tensor(full, t);
        if (tt->kind != FR_TENSOR_USER_TABLE) continue;
        size_t cols = tt->cols ? tt->cols : 1, per = m->gbuf_cap / cols;
        if (per == 0) per = 1;
        for (size_t u0 = 0; u0 < m->n_users; u0 += per) {
            size_t u1 = m->n_users - u0 < per ? m->n_users : u0 + per;
            int at = 0;
            for (uint32_t r = 0; r < n; r++) { /* users u0 <= u < u1 with u % n == r */
                size_t first = u0 + (r + n - u0 % n) % n, k = first < u1 ? (u1 - first + n - 1) / n : 0;
                m->gcount[r] = r == 0 ? 0 : (int)(k * tt->cols);
                m->gdispl[r] = at;
                at += m->gcount[r];
            }
            uint32_t *b = m->gbuf;
            if (m->rank == 0)
                for (uint32_t r = 1; r < n; r++) {
                    size_t o = (size_t)m->gdispl[r];
                    for (size_t u = u0 + (r + n - u0 % n) % n; u < u1; u += n, o += tt->cols)
                        memcpy(b + o, fri_sim_private_row(m->sim, t, (uint32_t)u), tt->cols * sizeof *b);
                }
            int mine = m->gcount[m->rank];
            MPI_Scatterv(b, m->gcount, m->gdispl, MPI_UINT32_T, m->rank == 0 ? MPI_IN_PLACE : b, mine,
                         MPI_UINT32_T, 0, m->comm);
            if (m->rank == 0) continue;
            size_t o = 0;
            for (size_t u = u0 + ((uint32_t)m->rank + n - u0 % n) % n; u < u1; u += n, o += tt->cols) {
                float *row = fri_sim_private_row_mut(m->sim, t, (uint32_t)u);
                if (row) memcpy(row, b + o, tt->cols * sizeof *row);
            }
        }
    }
    return FR_OK;
}

/* Rank 0 reads the checkpoint (path; NULL elsewhere). With a user each, rank 0 loads it,
 * the others its head (the controller's state and what names the run, checked on each
 * rank), then rank 0 scatters each rank's rows: no rank > 0 holds the whole file. With
 * silos (every rank keeps the whole store) every rank loads the whole file's bytes. */
static fr_err load_all(mpi_run *m, const char *path) {
    uint8_t *d = NULL;
    size_t n = 0;
    fr_err e = m->rank == 0 ? fri_read_file(path, &d, &n) : FR_OK;
    if ((e = agree(m, e))) { fri_free(d); return e; }
    bool heads = !m->silos && m->size > 1;
    if (heads && m->rank == 0) {
        e = fri_sim_checkpoint_decode(m->sim, d, n, path);
        if (!e) n = fri_sim_checkpoint_head_len(d, n); /* what the others get */
    }
    if (heads && (e = agree(m, e))) { fri_free(d); return e; }
    uint64_t len = n;
    MPI_Bcast(&len, 1, MPI_UINT64_T, 0, m->comm);
    if (m->rank != 0) {
        n = (size_t)len;
        e = (d = fri_malloc(n ? n : 1)) ? FR_OK : FR_ERR_NOMEM;
    }
    if ((e = agree(m, e))) { fri_free(d); return e; }
    bcast_bytes(d, n, m->comm);
    const char *name = m->rank == 0 ? path : "the checkpoint (from rank 0)";
    if (!heads) e = fri_sim_checkpoint_decode(m->sim, d, n, name);
    else if (m->rank != 0) e = fri_sim_checkpoint_decode_head(m->sim, d, n, name);
    fri_free(d);
    if ((e = agree(m, e)) || !heads) return e;
    return scatter_private(m);
}

/* ------------------------------------------------------------------ rank 0: the loop's driver */

static void command(mpi_run *m, int cmd) { MPI_Bcast(&cmd, 1, MPI_INT, 0, m->comm); }

static fr_err lead_step(void *ctx, fr_loop_step *out) {
    mpi_run *m = ctx;
    command(m, CMD_ROUND);
    fr_err e = fr_sim_round(m->sim, &out->round);
    out->loss = out->round.loss;
    return e;
}
static uint32_t lead_completed(void *ctx) { return fr_round_completed(fr_sim_controller(((mpi_run *)ctx)->sim)); }
static fr_model *lead_model(void *ctx) {
    mpi_run *m = ctx;
    command(m, CMD_MODEL);
    if (gather_private(m)) { /* out of memory on some rank: the model's own rows are evaluated (said in stats) */
        m->stats.gather_failures++;
    }
    return fr_sim_model(m->sim);
}
static fr_pool *lead_pool(void *ctx) { return fri_sim_pool(((mpi_run *)ctx)->sim); }
static fr_err lead_save(void *ctx, const char *path) {
    mpi_run *m = ctx;
    command(m, CMD_SAVE);
    fr_err e = gather_private(m);
    return e ? e : fr_sim_checkpoint_save(m->sim, path);
}
static fr_err lead_load(void *ctx, const char *path) {
    mpi_run *m = ctx;
    command(m, CMD_LOAD);
    return load_all(m, path);
}

/* The other ranks: commands until told to stop. */
static fr_err follow(mpi_run *m) {
    for (;;) {
        int cmd = 0;
        MPI_Bcast(&cmd, 1, MPI_INT, 0, m->comm);
        fr_round_stats st;
        switch (cmd) {
        case CMD_ROUND:
            if (fr_sim_round(m->sim, &st)) { /* every rank failed alike: rank 0 reports it */ }
            break;
        case CMD_MODEL:
        case CMD_SAVE:
            if (gather_private(m)) { /* the error was agreed: rank 0 reports it */ }
            break;
        case CMD_LOAD:
            if (load_all(m, NULL)) { /* agreed */ }
            break;
        case CMD_STOP:
            return FR_OK;
        default:
            return fri_fail(FR_ERR_INTERNAL, "mpi: unknown command %d from rank 0", cmd);
        }
    }
}

static void mpi_run_free(mpi_run *m) {
    fri_free(m->u_off);
    fri_free(m->u_len);
    fri_free(m->u_row);
    fri_free(m->touched);
    fri_free(m->pack);
    fri_free(m->status);
    fri_free(m->owner);
    fri_free(m->gbuf);
    fri_free(m->gcount);
    fri_free(m->gdispl);
    fri_free(m->gat);
}

fr_err fr_run_mpi(const fr_run_config *c, const fr_dataset *train, const fr_dataset *test, const fr_negatives *negs,
                  fr_loop_callback cb, void *user, fr_loop_summary *summary, fr_model **model, fr_mpi_stats *stats) {
    if (model) *model = NULL;
    if (summary) memset(summary, 0, sizeof *summary);
    if (stats) memset(stats, 0, sizeof *stats);
    if (!mpi_up()) return fri_fail(FR_ERR_STATE, "the mpi runtime: MPI is not initialised (fr_mpi_init)");
    fr_err e = fr_run_config_check(c);
    if (e) return e;
    if (c->centralized)
        return fri_fail(FR_ERR_INVALID, "the mpi runtime runs a federation: centralized training has no clients");
    if (fr_fl_dp_on(&c->fl))
        return fri_fail(FR_ERR_UNSUPPORTED, "the mpi runtime: differential privacy's noise and clip counts are one "
                        "controller's (run it on the sim runtime)");
    if (c->secagg) return fri_fail(FR_ERR_UNSUPPORTED, "the mpi runtime: secure aggregation runs on the sim runtime");
    if (!train || !test) return fri_fail(FR_ERR_INVALID, "fr_run_mpi: no training or test data");
    mpi_run m;
    memset(&m, 0, sizeof m);
    m.comm = MPI_COMM_WORLD;
    m.n_users = fr_dataset_n_users(train);
    m.silos = c->partition != FR_PARTITION_USER;
    MPI_Comm_rank(m.comm, &m.rank);
    MPI_Comm_size(m.comm, &m.size);
    fr_model_config mc = c->model;
    /* the config's figures read from the data (a rating model's mean, fr_run_config_preset)
     * is rank 0's: a rank that made its config from only its share of the data (generated or
     * read alone, fr_dataset_generate_share) trains the same federation */
    MPI_Bcast(&mc.mu, 1, MPI_FLOAT, 0, m.comm);
    fr_fl_config fl = c->fl; /* and federated lightgcn's item rate, which the preset scales by the graph */
    MPI_Bcast(&fl.item_local.lr, 1, MPI_FLOAT, 0, m.comm);
    fr_pool *pool = NULL;
    fr_partition *part = NULL;
    e = fr_pool_create(&pool, c->threads);
    if (!e && c->partition != FR_PARTITION_USER)
        e = fr_partition_make(&part, train, c->partition, c->partition_k, c->partition_alpha, NULL, c->fl.seed);
    if (!e) e = fri_sim_create_share(&m.sim, &mc, &fl, train, part, pool, (uint32_t)m.rank, (uint32_t)m.size);
    if (!e) {
        fr_sim_set_wire(m.sim, c->wire);
        e = fri_sim_set_share(m.sim, (uint32_t)m.rank, (uint32_t)m.size, reduce, &m);
    }
    { /* rank 0's data names the run (a rank may hold only its share: fr_mpi_shard); every
         rank takes part in the broadcast, failed or not */
        fr_fingerprint fp;
        fr_dataset_fingerprint(train, &fp);
        uint64_t w[4] = {fp.users, fp.items, fp.interactions, fp.crc};
        MPI_Bcast(w, 4, MPI_UINT64_T, 0, m.comm);
        fp = (fr_fingerprint){(uint32_t)w[0], (uint32_t)w[1], w[2], (uint32_t)w[3]};
        if (!e) fri_sim_set_fingerprint(m.sim, &fp);
    }
    if (!e) e = make_units(&m);
    if (!e && !(m.status = fri_malloc((size_t)(fr_sim_n_clients(m.sim) ? fr_sim_n_clients(m.sim) : 1))))
        e = FR_ERR_NOMEM;
    e = agree(&m, e); /* every rank is ready, or all stop here */
    if (!e && m.rank == 0) {
        fr_loop_driver d = {FR_LOOP_ROUND, lead_step, lead_completed, lead_model, lead_pool, lead_save, lead_load, NULL};
        e = fr_loop_run(&c->loop, &d, &m, train, test, negs, cb, user, summary);
        if (!e && model) {
            lead_model(&m);
            *model = fri_sim_take_model(m.sim); /* not a copy of the whole store */
        }
        fr_err keep = e;
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", e ? fr_errmsg() : "");
        command(&m, CMD_STOP);
        if (keep) e = fri_fail(keep, "%s", msg);
    } else if (!e) {
        e = follow(&m);
    }
    m.stats.ranks = (uint32_t)m.size;
    if (stats) *stats = m.stats;
    mpi_run_free(&m);
    fr_sim_free(m.sim);
    fr_partition_free(part);
    fr_pool_free(pool);
    return e;
}
