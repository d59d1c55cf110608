/* train.c: GD, SGD, heavy-ball momentum and Adam on L_gamma = L + (gamma/2)|theta|^2, with
 * the ledger of every quantity kept step by step (docs/theory.md (F3)).  The step s = theta' -
 * theta is split into the part the data gradient drives and the part weight decay drives;
 * both optimizers with state keep the two parts in separate (linear) accumulators, so the
 * split is exact:
 *   gd, sgd    s = -lr p,                          p = g_batch + gamma theta
 *   momentum   v <- beta v - lr p,  s = v           (v = v_data + v_decay)
 *   adam       m <- b1 m + (1-b1) p,  u <- b2 u + (1-b2) p^2,
 *              s = -lr (m / (1 - b1^t)) / (sqrt(u / (1 - b2^t)) + eps)   (m = m_data + m_decay)
 * Minibatches: per epoch a seeded permutation of the samples (stream = epoch), batches of
 * `batch` consecutive rows of it, the remainder left for the next epoch's shuffle: a pure
 * function of (seed, step), so a run resumed at any step (nt_train_run with a state loaded
 * from a checkpoint, resume.c) takes the same batches.  The state between steps lives in
 * nt_train_state, nothing of it in locals, so a checkpoint at a step boundary is exact.
 * Each logged row carries L(theta_k) and L_gamma(theta_k) on the whole training set, from
 * the same pass that gives the accuracy (not the minibatch losses met on the way).
 * Sharded data (nt_data_shard, under MPI, docs/theory.md §8): the permutation is that of the
 * whole set's N rows, each shard takes the rows of each batch that it holds, and the
 * engine's hook sums the batch's gradient and its count over the shards, so every shard
 * takes the steps of one process on the whole set (to the order of the sums); the logged
 * sums and R of the gradient-flow column are summed the same way. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cblas.h>
#include "ledger.h"
#include "../util/simd.h"

typedef struct {
    const nt_spec *spec;
    const nt_model *m;
    const nt_data *data;
    const nt_transform *list;
    int n_list;
    nt_engine *e;
    nt_dataset batch;        /* a view or a gathered copy */
    int64_t *perm, perm_epoch;
    int64_t N, first;        /* the whole set's rows, and this shard's first among them */
    double k_degree;         /* homogeneity degree (0: not homogeneous) */
    double *Bu;              /* K x K + K: an output generator B and u of one sample (r_term) */
} trainer;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* the rows of step `step` (SGD-type optimizers) or the whole set (gd, or batch >= N) */
static const nt_dataset *select_batch(trainer *T, int64_t step)
{
    const nt_dataset *all = &T->data->train;
    const int64_t B = T->spec->train.batch, N = T->N;
    if (T->spec->train.optimizer == NT_OPT_GD || B <= 0 || B >= N) return all;
    const int64_t per_epoch = N / B, epoch = step / per_epoch, b = step % per_epoch;
    if (epoch != T->perm_epoch) {   /* Fisher-Yates, seeded by (seed, epoch) */
        for (int64_t i = 0; i < N; i++) T->perm[i] = i;
        for (int64_t i = N - 1; i > 0; i--) {
            int64_t j = (int64_t)(nt_rand_u64(T->spec->train.seed, (uint64_t)epoch, (uint64_t)i) % (uint64_t)(i + 1));
            int64_t t = T->perm[i]; T->perm[i] = T->perm[j]; T->perm[j] = t;
        }
        T->perm_epoch = epoch;
    }
    nt_dataset *bt = &T->batch;
    bt->n = 0;
    for (int64_t r = 0; r < B; r++) {   /* the batch's rows this shard holds (all of them unsharded) */
        int64_t src = T->perm[b * B + r] - T->first;
        if (src < 0 || src >= all->n) continue;
        memcpy(bt->x + bt->n * all->dim, all->x + src * all->dim, sizeof(double) * all->dim);
        memcpy(bt->y + bt->n * all->ydim, all->y + src * all->ydim, sizeof(double) * all->ydim);
        bt->n++;
    }
    return bt;
}

/* mean loss and accuracy (classification; NAN for mse) of theta on a data set */
static int evaluate(trainer *T, const double *theta, const nt_dataset *ds, int sharded, double *loss, double *acc,
                    double *margin, nt_error *err)
{
    const int K = T->m->output;
    double *F = malloc(sizeof(double) * (size_t)(ds->n * K));
    if (!F) return nt_fail(err, NT_EFAIL, "out of memory for the outputs of %lld samples", (long long)ds->n);
    int rc = nt_outputs(T->e, theta, ds, F, err);
    if (rc != NT_OK) {
        free(F);
        return rc;
    }
    double L = 0, hits = 0, mg = INFINITY;
    for (int64_t n = 0; n < ds->n; n++) {
        const double *f = F + n * K, *y = ds->y + n * ds->ydim;
        L += nt_loss_eval(T->m->loss, K, f, y, NULL);
        if (T->m->loss == NT_LOSS_CROSS_ENTROPY) {
            int c = 0;
            for (int j = 1; j < K; j++) if (f[j] > f[c]) c = j;
            hits += c == (int)y[0];
        } else if (T->m->loss != NT_LOSS_MSE) {
            hits += y[0] * f[0] > 0;
            mg = fmin(mg, y[0] * f[0]);
        }
    }
    int64_t n = ds->n;
    if (sharded) {   /* every shard's sums and count, and the smallest margin */
        double sums[2] = {L, hits};
        if ((rc = nt_engine_reduce(T->e, sums, 2, &n, err))) {
            free(F);
            return rc;
        }
        L = sums[0];
        hits = sums[1];
        mg = nt_parallel_min(mg);
    }
    *loss = L / (double)n;
    *acc = T->m->loss == NT_LOSS_MSE ? NAN : hits / (double)n;
    if (margin) {
        double nrm = nt_norm2(T->m->d, theta);
        *margin = (T->k_degree > 0 && T->m->loss != NT_LOSS_MSE && T->m->loss != NT_LOSS_CROSS_ENTROPY)
                      ? mg / pow(nrm, T->k_degree) : NAN;
    }
    free(F);
    return NT_OK;
}

/* R_j = E_batch[u^T B_j f] for each quantity (0 for a symmetry), into R (nq), the sums over
 * the batch's rows of every shard (one reduction for all quantities) divided by its count */
static int r_terms(trainer *T, const nt_quantity *q, int nq, const nt_dataset *bt, const double *F, double *R,
                   nt_error *err)
{
    const int K = T->m->output;
    double *B = T->Bu, *u = T->Bu + K * K;
    for (int j = 0; j < nq; j++) {
        R[j] = 0;
        if (!q[j].equivariance) continue;
        nt_tr_output_B(T->m, &T->list[q[j].entry], q[j].gen, B);
        for (int64_t n = 0; n < bt->n; n++) {
            const double *f = F + n * K;
            nt_loss_eval(T->m->loss, K, f, bt->y + n * bt->ydim, u);
            for (int i = 0; i < K; i++)
                for (int k = 0; k < K; k++) R[j] += u[i] * B[i * K + k] * f[k];
        }
    }
    int64_t n = bt->n;
    int rc = T->data->shard_total > 0 ? nt_engine_reduce(T->e, R, nq, &n, err) : NT_OK;
    for (int j = 0; j < nq && !rc; j++) R[j] /= (double)n;
    return rc;
}

/* Q measured at theta from theta^T A theta (tt) and Q's magnitude (mag); the gap to the
 * ledger's prediction, relative to the scale of Q's terms and of the steps so far */
static void measure(const nt_model *m, const nt_transform *list, nt_quantity *q, int nq, const double *theta,
                    const double *tt, const double *mag)
{
    for (int j = 0; j < nq; j++) {
        nt_quantity *Q = &q[j];
        Q->measured = 0.5 * tt[j] + nt_ledger_shift(m, list, Q, theta);
        Q->size = fmax(Q->size, mag[j]);
        double gap = fabs(Q->measured - Q->predicted) / (Q->size > 1e-300 ? Q->size : 1e-300);
        if (gap > Q->max_gap) Q->max_gap = gap;
    }
}

/* the row of step `step`: L(theta) and L_gamma(theta) = L + (gamma/2)|theta|^2 on the whole
 * training set (the decay term summed as the engine's nt_loss_value sums it) */
static int log_now(trainer *T, nt_train_fn fn, void *ctx, int64_t step, const double *theta,
                   const nt_quantity *q, int nq, double seconds, nt_error *err)
{
    if (!fn) return NT_OK;
    nt_train_log L = { .step = step, .test_loss = NAN, .test_accuracy = NAN, .seconds = seconds };
    int rc = evaluate(T, theta, &T->data->train, T->data->shard_total > 0, &L.loss, &L.accuracy, &L.margin, err);
    if (rc != NT_OK) return rc;
    L.loss_gamma = L.loss;
    if (T->m->weight_decay != 0) L.loss_gamma += 0.5 * T->m->weight_decay * cblas_ddot((int)T->m->d, theta, 1, theta, 1);
    if (T->data->test.n > 0 && (rc = evaluate(T, theta, &T->data->test, 0, &L.test_loss, &L.test_accuracy, NULL, err)))
        return rc;
    L.norm2 = nt_norm2(T->m->d, theta) * nt_norm2(T->m->d, theta);
    fn(ctx, &L, theta, q, nq);
    return NT_OK;
}

/* One step's update of theta[lo, hi) in place and, for the ledger (prev not NULL), its parts:
 * s = theta' - theta (the step actually taken, rounded as theta + s rounds), s_decay (weight
 * decay's part, kept apart as the top of the file says; NULL: zero, without weight decay)
 * and the old theta in prev, or, when the ledger hands rows of scratch (to, ledger.h), there:
 * element lo + i at to[0][i], to[1][i], to[2][i].  One loop per optimizer: this memory traffic
 * is a batch of 64's cost. */
typedef struct {
    nt_optimizer opt;
    double lr, gam, mu, b1, b2, b1t, b2t, eps;
    const double *g;
    double *theta, *prev, *s, *s_decay, *acc_data, *acc_decay, *acc_sq;
} stepper;

NT_CLONES static void step_range(void *ctx, int64_t lo, int64_t hi, double *const *to)
{
    const stepper *u = ctx;
    const double lr = u->lr, gam = u->gam, mu = u->mu, b1 = u->b1, b2 = u->b2, b1t = u->b1t, b2t = u->b2t;
    const int64_t n = hi - lo;
    /* every pointer at element lo: index i below is element lo + i */
    const double *restrict g = u->g + lo;
    double *restrict theta = u->theta + lo;
    double *restrict acc_data = u->acc_data ? u->acc_data + lo : NULL;
    double *restrict acc_decay = u->acc_decay ? u->acc_decay + lo : NULL;
    double *restrict acc_sq = u->acc_sq ? u->acc_sq + lo : NULL;
    const int keep = u->prev != NULL, decay = keep && u->s_decay != NULL;
    double *restrict prev = !keep ? NULL : to ? to[2] : u->prev + lo;
    double *restrict s = !keep ? NULL : to ? to[0] : u->s + lo;
    double *restrict s_decay = !decay ? NULL : to ? to[1] : u->s_decay + lo;
    if (to && !decay) memset(to[1], 0, sizeof(double) * (size_t)n);   /* no weight decay: s_decay = 0 */
    switch (u->opt) {
    case NT_OPT_MOMENTUM:
        for (int64_t i = 0; i < n; i++) {
            const double t = theta[i], pd = gam * t, pg = g[i] - pd;
            acc_data[i] = mu * acc_data[i] - lr * pg;
            acc_decay[i] = mu * acc_decay[i] - lr * pd;
            const double next = t + (acc_data[i] + acc_decay[i]);
            theta[i] = next;
            if (keep) { prev[i] = t; s[i] = next - t; }
            if (decay) s_decay[i] = acc_decay[i];
        }
        break;
    case NT_OPT_ADAM:
        for (int64_t i = 0; i < n; i++) {
            const double t = theta[i], pd = gam * t, pg = g[i] - pd;
            acc_data[i] = b1 * acc_data[i] + (1 - b1) * pg;
            acc_decay[i] = b1 * acc_decay[i] + (1 - b1) * pd;
            acc_sq[i] = b2 * acc_sq[i] + (1 - b2) * g[i] * g[i];
            const double scale = -lr / b1t / (sqrt(acc_sq[i] / b2t) + u->eps);
            const double next = t + scale * (acc_data[i] + acc_decay[i]);
            theta[i] = next;
            if (keep) { prev[i] = t; s[i] = next - t; }
            if (decay) s_decay[i] = scale * acc_decay[i];
        }
        break;
    default:
        for (int64_t i = 0; i < n; i++) {
            const double t = theta[i], next = t + -lr * g[i];
            theta[i] = next;
            if (keep) { prev[i] = t; s[i] = next - t; }
            if (decay) s_decay[i] = -lr * (gam * t);
        }
    }
}

/* no infinity or NaN among x's n values: no exponent field all ones (a test that vectorizes) */
NT_CLONES static int all_finite(int64_t n, const double *restrict x)
{
    uint64_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        uint64_t bits;
        memcpy(&bits, &x[i], sizeof bits);
        bad |= (bits & 0x7ff0000000000000ULL) == 0x7ff0000000000000ULL;
    }
    return !bad;
}

int nt_train(const nt_spec *spec, const nt_data *data, const nt_transform *list, int n_list,
             double *theta, nt_quantity *q, int nq, nt_train_fn fn, void *ctx, nt_error *err)
{
    return nt_train_run(spec, data, list, n_list, theta, q, nq, fn, ctx, NULL, err);
}

int nt_train_run(const nt_spec *spec, const nt_data *data, const nt_transform *list, int n_list,
                 double *theta, nt_quantity *q, int nq, nt_train_fn fn, void *ctx,
                 const nt_train_control *ctl, nt_error *err)
{
    const nt_model *m = &spec->model;
    const nt_train_spec *ts = &spec->train;
    const nt_dataset *all = &data->train;
    const int64_t d = m->d, N = data->shard_total > 0 ? data->shard_total : all->n;
    const int64_t B = ts->optimizer != NT_OPT_GD && ts->batch > 0 && ts->batch < N ? ts->batch : N;   /* as select_batch */
    const double gam = m->weight_decay, lr = ts->lr;
    trainer T = { spec, m, data, list, n_list, NULL, { .dim = all->dim, .ydim = all->ydim }, NULL, -1, N,
                  data->shard_total > 0 ? data->shard_start : 0, 0, NULL };
    T.e = nt_engine_new(m, B < NT_ENGINE_CHUNK ? B : NT_ENGINE_CHUNK, 1);
    T.batch.x = malloc(sizeof(double) * (size_t)(B * all->dim));
    T.batch.y = malloc(sizeof(double) * (size_t)(B * all->ydim));
    T.perm = malloc(sizeof(int64_t) * (size_t)N);
    for (int i = 0; i < n_list; i++) if (list[i].kind == NT_TR_HOMOGENEOUS) T.k_degree = list[i].p;
    double *g = malloc(sizeof(double) * d), *prev = malloc(sizeof(double) * d);
    /* without weight decay s_decay is zero: never written (calloc's pages) */
    double *s = malloc(sizeof(double) * d), *s_decay = gam != 0 ? malloc(sizeof(double) * d) : calloc((size_t)d, sizeof(double));
    nt_train_state fresh = {0}, *st = ctl && ctl->state ? ctl->state : &fresh;
    if (st == &fresh && nt_train_state_init(&fresh, d)) return nt_fail(err, NT_EFAIL, "out of memory (d = %lld)", (long long)d);
    double *acc_data = st->opt, *acc_decay = st->opt + d, *acc_sq = st->opt + 2 * d;
    double *F = malloc(sizeof(double) * (size_t)(B * m->output));
    double *form = malloc(sizeof(double) * (size_t)(6 * nq + 1));   /* 4 forms, a magnitude and R per quantity */
    nt_ledger_plan *plan = nq ? nt_ledger_plan_new(m, list, q, nq) : NULL;   /* where the forms are read */
    T.Bu = malloc(sizeof(double) * (size_t)(m->output + 1) * (size_t)m->output);
    if (!T.e || !T.batch.x || !T.batch.y || !T.perm || !g || !prev || !s || !s_decay || !F || !form || (nq && !plan) || !T.Bu) {
        free(g); free(prev); free(s); free(s_decay); free(F); free(form); nt_ledger_plan_free(plan);
        nt_train_state_free(&fresh);
        free(T.batch.x); free(T.batch.y); free(T.perm); free(T.Bu);
        nt_engine_free(T.e);
        return nt_fail(err, NT_EFAIL, "out of memory for training (d = %lld, batch %lld)", (long long)d, (long long)B);
    }
    if (ctl && ctl->reduce && nt_engine_set_reduce(T.e, ctl->reduce, ctl->reduce_ctx, err)) {
        free(g); free(prev); free(s); free(s_decay); free(F); free(form); nt_ledger_plan_free(plan);
        nt_train_state_free(&fresh);
        free(T.batch.x); free(T.batch.y); free(T.perm); free(T.Bu);
        nt_engine_free(T.e);
        return NT_EFAIL;
    }
    if (nq) {
        const double *th[1] = {theta};
        nt_ledger_forms(m, list, q, plan, 1, th, th, form + 3 * nq, form + 4 * nq, NULL, NULL);
    }
    int any_equivariance = 0, rc = NT_OK;
    for (int i = 0; i < nq; i++) any_equivariance |= q[i].equivariance;
    const double t0 = now() - st->seconds;   /* wall time continues across a resume */
    if (!st->started) {   /* a fresh run: the ledger starts at theta, step 0 is logged */
        for (int i = 0; i < nq; i++) {
            q[i].initial = q[i].measured = q[i].predicted = q[i].gradient_flow = nt_quantity_value(m, list, &q[i], theta);
            q[i].size = nt_quantity_magnitude(m, list, &q[i], theta);
            q[i].first = q[i].decay = q[i].second = q[i].max_gap = q[i].flow_source = 0;
        }
        st->step = 0;
        st->started = 1;
        rc = log_now(&T, fn, ctx, 0, theta, q, nq, now() - t0, err);
    }
    st->stopped = 0;
    int64_t step, saved = -1;   /* saved: the step of the last checkpoint */
    for (step = st->step; rc == NT_OK && step < ts->steps; step++) {
        st->step = step;
        if (ctl && ctl->stop && data->shard_total > 0)   /* every shard stops at the same step: the largest signal */
            *ctl->stop = (sig_atomic_t)-nt_parallel_min(-(double)*ctl->stop);
        if (ctl && ctl->stop && *ctl->stop) {   /* a step boundary: save the run and stop */
            st->seconds = now() - t0;
            if (ctl->checkpoint && saved != step) rc = ctl->checkpoint(ctl->ctx, st, theta, q, nq, err);
            st->stopped = 1;
            break;
        }
        const nt_dataset *bt = select_batch(&T, step);
        double loss;
        if ((rc = nt_grad(T.e, theta, bt, &loss, g, err))) break;   /* g_gamma = p */
        if (!isfinite(loss) || !all_finite(d, g)) {
            rc = nt_fail(err, NT_EFAIL, "step %lld: the loss or its gradient is not finite (loss %g); "
                         "stopped with the parameters of step %lld", (long long)step, loss, (long long)step);
            break;
        }
        if (any_equivariance) {   /* the batch's outputs: from the gradient pass when it was one chunk */
            int64_t rows;
            const double *last = nt_engine_outputs(T.e, &rows);
            if (bt->n == 0) {   /* a shard holding none of this batch's rows */
            } else if (rows == bt->n) memcpy(F, last, sizeof(double) * (size_t)(rows * m->output));
            else if ((rc = nt_outputs(T.e, theta, bt, F, err))) break;
        }
        stepper u = { ts->optimizer, lr, gam, ts->momentum, ts->beta1, ts->beta2,
                      1 - pow(ts->beta1, (double)(step + 1)), 1 - pow(ts->beta2, (double)(step + 1)), ts->eps,
                      g, theta, nq ? prev : NULL, s, gam != 0 ? s_decay : NULL, acc_data, acc_decay, acc_sq };
        if (!nq) {
            step_range(&u, 0, d, NULL);
        } else {
            /* The step and one sweep for every quantity's forms in the same pass over the
             * parameters: s^T A theta, s_decay^T A theta, s^T A s and theta^T A theta (with
             * Q's magnitude), theta the step's start (prev).  The last measures Q there,
             * closing the previous step's entry of the ledger; logged steps measure at once
             * (below). */
            const double *ys[4] = {s, s_decay, s, prev}, *xs[4] = {prev, prev, s, prev};
            nt_ledger_forms(m, list, q, plan, 4, ys, xs, form, form + 4 * nq, step_range, &u);
            if (step > 0) measure(m, list, q, nq, prev, form + 3 * nq, form + 4 * nq);
        }
        const double t_next = lr * (double)(step + 1);   /* gradient-flow time after this step */
        double *R = form + 5 * nq;
        if (any_equivariance && (rc = r_terms(&T, q, nq, bt, F, R, err))) break;
        double kappa = NAN, w = 0, e_lr = 0, e_t = 0;   /* (F2)'s factors for the rate kappa */
        for (int j = 0; j < nq; j++) {   /* (F3) term by term, and (F2) */
            nt_quantity *Q = &q[j];
            double xs = form[j] + nt_ledger_shift(m, list, Q, s);
            double xd = form[nq + j] + nt_ledger_shift(m, list, Q, s_decay);
            double second = 0.5 * form[2 * nq + j];
            const double ct = nt_ledger_shift(m, list, Q, prev);   /* c^T theta */
            Q->first += xs - xd;
            Q->decay += xd;
            Q->second += second;
            Q->size += fabs(xs - xd) + fabs(xd) + fabs(second);   /* the step terms; Q's own in measure() */
            Q->predicted += xs + second;
            /* (F2) as dQ/dt = -kappa Q + S (see nt_quantity): over [t, t + lr] with S held at
             * theta, e^{-kappa lr} on what was there and S (1 - e^{-kappa lr}) / kappa added */
            if (Q->rate * gam != kappa) {   /* the factors, once per rate (1 or 2) and step */
                kappa = Q->rate * gam;
                w = kappa > 0 ? -expm1(-kappa * lr) / kappa : lr;
                e_lr = exp(-kappa * lr);
                e_t = exp(-kappa * t_next);
            }
            double S = -(Q->equivariance ? R[j] : 0) + (Q->rate == 2 ? gam * ct : 0);
            Q->flow_source = e_lr * Q->flow_source + w * S;
            Q->gradient_flow = e_t * Q->initial + Q->flow_source;
        }
        const int logged = (step + 1) % ts->log_every == 0 || step + 1 == ts->steps;
        if (nq && logged) {   /* measured now, for the log (and at the last step) */
            const double *th[1] = {theta};
            nt_ledger_forms(m, list, q, plan, 1, th, th, form + 3 * nq, form + 4 * nq, NULL, NULL);
            measure(m, list, q, nq, theta, form + 3 * nq, form + 4 * nq);
        }
        if (logged && (rc = log_now(&T, fn, ctx, step + 1, theta, q, nq, now() - t0, err))) break;
        st->step = step + 1;
        if (ctl && ctl->checkpoint && ctl->checkpoint_every > 0 && (step + 1) % ctl->checkpoint_every == 0 &&
            step + 1 < ts->steps) {
            st->seconds = now() - t0;
            saved = step + 1;
            if ((rc = ctl->checkpoint(ctl->ctx, st, theta, q, nq, err))) break;
        }
    }
    st->seconds = now() - t0;
    if (nq && (rc || st->stopped)) {   /* stopped early: measure where the run stopped (after the checkpoint) */
        const double *th[1] = {theta};
        nt_ledger_forms(m, list, q, plan, 1, th, th, form + 3 * nq, form + 4 * nq, NULL, NULL);
        measure(m, list, q, nq, theta, form + 3 * nq, form + 4 * nq);
    }
    free(prev); free(g); free(s); free(s_decay); free(F); free(form); nt_ledger_plan_free(plan);
    nt_train_state_free(&fresh);
    free(T.batch.x); free(T.batch.y); free(T.perm); free(T.Bu);
    nt_engine_free(T.e);
    return rc;
}
