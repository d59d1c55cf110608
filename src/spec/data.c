/* data.c: the spec's data source into train (and test) sets checked against the model.
 * Labels become targets by the loss (docs/interface.md): cross_entropy keeps the class id;
 * logistic/exponential take -1/+1 (0/1 labels are mapped to -1/+1); mse with K outputs
 * takes the target as given (npy), the label itself (K = 1) or its one-hot code (K > 1). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "spec_internal.h"

void nt_dataset_free(nt_dataset *ds)
{
    free(ds->x);
    free(ds->y);
    memset(ds, 0, sizeof *ds);
}

void nt_data_free(nt_data *data)
{
    nt_dataset_free(&data->train);
    nt_dataset_free(&data->test);
}

/* A data set handed in from outside (a binding's arrays) against the model: what the engine's
 * calls assume and do not check, since they return no status. */
int nt_dataset_check(const nt_model *m, const nt_dataset *ds, nt_error *err)
{
    const int K = m->output, ydim = m->loss == NT_LOSS_MSE ? K : 1;
    if (!ds || ds->n < 1) return nt_fail(err, NT_EINPUT, "data set: %lld samples (needs at least one)", ds ? (long long)ds->n : 0LL);
    if (!ds->x || !ds->y) return nt_fail(err, NT_EINPUT, "data set: no %s array", ds->x ? "target (y)" : "input (x)");
    if (ds->dim != m->input)
        return nt_fail(err, NT_EINPUT, "data set: %d features per sample, the model takes %d", ds->dim, m->input);
    if (ds->ydim != ydim)
        return nt_fail(err, NT_EINPUT, "data set: %d targets per sample, %s loss with %d outputs takes %d", ds->ydim,
                       nt_loss_name(m->loss), K, ydim);
    for (int64_t i = 0; i < ds->n * ds->dim; i++)
        if (!isfinite(ds->x[i]))
            return nt_fail(err, NT_EINPUT, "data set: feature %lld of sample %lld is not finite", (long long)(i % ds->dim),
                           (long long)(i / ds->dim));
    for (int64_t i = 0; i < ds->n * ydim; i++) {
        const double v = ds->y[i];
        if (!isfinite(v))
            return nt_fail(err, NT_EINPUT, "data set: target of sample %lld is not finite", (long long)(i / ydim));
        if (m->loss == NT_LOSS_CROSS_ENTROPY && (v != floor(v) || v < 0 || v >= K))
            return nt_fail(err, NT_EINPUT, "data set: label %g of sample %lld is not a class id in 0..%d", v, (long long)i, K - 1);
        if ((m->loss == NT_LOSS_LOGISTIC || m->loss == NT_LOSS_EXPONENTIAL) && v != 1 && v != -1)
            return nt_fail(err, NT_EINPUT, "data set: label %g of sample %lld must be -1 or +1 for %s loss", v, (long long)i,
                           nt_loss_name(m->loss));
    }
    return NT_OK;
}

/* labels (n values) into targets y (n x ydim) for the model's loss */
static int labels_to_targets(const nt_model *m, const char *src, const double *lab, int64_t n,
                             nt_dataset *ds, nt_error *err)
{
    const int K = m->output;
    int onehot = m->loss == NT_LOSS_MSE && K > 1;
    ds->ydim = onehot ? K : 1;
    ds->y = calloc((size_t)(n * ds->ydim), sizeof(double));
    int zero_one = 1;
    for (int64_t i = 0; i < n && m->loss != NT_LOSS_MSE; i++) zero_one &= lab[i] == 0 || lab[i] == 1;
    for (int64_t i = 0; i < n; i++) {
        double v = lab[i];
        if (!isfinite(v)) return nt_fail(err, NT_EINPUT, "%s: label of sample %lld is not finite", src, (long long)i);
        switch (m->loss) {
        case NT_LOSS_CROSS_ENTROPY:
            if (v != floor(v) || v < 0 || v >= K)
                return nt_fail(err, NT_EINPUT, "%s: label %g of sample %lld is not a class id in 0..%d (model has %d outputs)",
                               src, v, (long long)i, K - 1, K);
            ds->y[i] = v;
            break;
        case NT_LOSS_LOGISTIC:
        case NT_LOSS_EXPONENTIAL:
            if (zero_one) v = 2 * v - 1;
            if (v != 1 && v != -1)
                return nt_fail(err, NT_EINPUT, "%s: label %g of sample %lld must be -1 or +1 (or 0/1) for %s loss",
                               src, lab[i], (long long)i, nt_loss_name(m->loss));
            ds->y[i] = v;
            break;
        default:
            if (!onehot) { ds->y[i] = v; break; }
            if (v != floor(v) || v < 0 || v >= K)
                return nt_fail(err, NT_EINPUT, "%s: label %g of sample %lld is not a class id in 0..%d for one-hot mse targets",
                               src, v, (long long)i, K - 1);
            ds->y[i * K + (int64_t)v] = 1;
        }
    }
    return NT_OK;
}

/* A table (n x cols, e.g. a CSV) split into features and the label column. */
static int from_table(const nt_model *m, const char *src, const nt_array *t, int label_col,
                      nt_dataset *ds, nt_error *err)
{
    int64_t n = t->shape[0], cols = t->ndim == 2 ? t->shape[1] : 1;
    if (t->ndim != 2 || cols < 2)
        return nt_fail(err, NT_EINPUT, "%s: needs at least two columns (features and a label)", src);
    int64_t lc = label_col < 0 ? cols - 1 : label_col;
    if (lc >= cols)
        return nt_fail(err, NT_EINPUT, "%s: data.label: column %lld does not exist (%lld columns)",
                       src, (long long)lc, (long long)cols);
    if (cols - 1 != m->input)
        return nt_fail(err, NT_EINPUT, "%s: has %lld feature columns, model.input is %d",
                       src, (long long)(cols - 1), m->input);
    ds->n = n;
    ds->dim = m->input;
    ds->x = malloc(sizeof(double) * (size_t)(n * ds->dim));
    double *lab = malloc(sizeof(double) * (size_t)n);
    for (int64_t i = 0; i < n; i++) {
        const double *row = t->data + i * cols;
        for (int64_t j = 0, o = 0; j < cols; j++)
            if (j == lc) lab[i] = row[j];
            else ds->x[i * ds->dim + o++] = row[j];
    }
    int rc = labels_to_targets(m, src, lab, n, ds, err);
    free(lab);
    return rc;
}

/* features from an array (n x input, or n x r x c images flattened, scaled by `scale`) */
static int take_features(const nt_model *m, const char *src, nt_array *x, double scale,
                         nt_dataset *ds, nt_error *err)
{
    if (x->ndim < 1 || x->shape[0] < 1)
        return nt_fail(err, NT_EINPUT, "%s: no samples", src);
    int64_t n = x->shape[0], dim = n ? x->size / n : 0;
    if (x->ndim == 1 && m->input == 1) dim = 1;
    if ((x->ndim == 1 && m->input != 1) || dim != m->input)
        return nt_fail(err, NT_EINPUT, "%s: has %lld features per sample, model.input is %d",
                       src, (long long)dim, m->input);
    for (int64_t i = 0; i < x->size; i++) {
        if (!isfinite(x->data[i]))
            return nt_fail(err, NT_EINPUT, "%s: element %lld is not finite", src, (long long)i);
        x->data[i] *= scale;
    }
    ds->n = n;
    ds->dim = (int)dim;
    ds->x = x->data;   /* ownership moves to the data set */
    x->data = NULL;
    return NT_OK;
}

/* x and y, or (parts > 1) only part `part` of `parts` of their rows (a shard, nt_data_load_shard) */
static int load_npy(const nt_model *m, const nt_data_spec *d, int part, int parts, nt_data *data, nt_error *err)
{
    nt_dataset *ds = &data->train;
    nt_array x = {0}, y = {0};
    int64_t rows_x = 0, rows_y = 0;
    int rc = nt_npy_read_rows(d->x, part, parts, &x, &data->shard_start, &rows_x, err);
    if (!rc) rc = nt_npy_read_rows(d->y, part, parts, &y, NULL, &rows_y, err);
    if (!rc) rc = take_features(m, d->x, &x, 1.0, ds, err);
    if (!rc && rows_y != rows_x)
        rc = nt_fail(err, NT_EINPUT, "%s: has %lld rows, x has %lld", d->y, (long long)rows_y, (long long)rows_x);
    if (parts > 1) data->shard_total = rows_x;
    if (!rc && m->loss == NT_LOSS_MSE && y.ndim == 2 && y.shape[1] == m->output) {
        ds->ydim = m->output;   /* float targets, as given */
        ds->y = y.data;
        y.data = NULL;
        for (int64_t i = 0; i < y.size && !rc; i++)
            if (!isfinite(ds->y[i])) rc = nt_fail(err, NT_EINPUT, "%s: element %lld is not finite", d->y, (long long)i);
    } else if (!rc) {
        if (y.ndim != 1 && !(y.ndim == 2 && y.shape[1] == 1))
            rc = nt_fail(err, NT_EINPUT, "%s: shape must be (N,) of labels%s", d->y,
                         m->loss == NT_LOSS_MSE ? " or (N, K) of targets" : "");
        else rc = labels_to_targets(m, d->y, y.data, ds->n, ds, err);
    }
    nt_array_free(&x);
    nt_array_free(&y);
    return rc;
}

/* the first `limit` rows (all when 0), or (parts > 1) part `part` of `parts` of them (a shard,
 * nt_data_load_shard; *first: where it starts) */
static int load_idx(const nt_model *m, const char *images, const char *labels, int64_t limit, int part, int parts,
                    nt_dataset *ds, int64_t *first, int64_t *total, nt_error *err)
{
    nt_array x = {0}, y = {0};
    int64_t nx = 0, ny = 0;   /* the rows of each file: the first `limit` are read */
    int rc = nt_idx_read_part(images, limit, part, parts, &x, &nx, err);
    if (!rc && x.ndim == 1)
        rc = nt_fail(err, NT_EINPUT, "%s: holds labels (IDX magic 0x00000801), not images (data.images wants 0x00000803)",
                     images);
    if (!rc) rc = nt_idx_read_part(labels, limit, part, parts, &y, &ny, err);
    if (!rc && y.ndim != 1)
        rc = nt_fail(err, NT_EINPUT, "%s: holds images (IDX magic 0x00000803, %lld of %lld x %lld), not labels "
                     "(data.labels wants 0x00000801)", labels, (long long)ny, (long long)y.shape[1], (long long)y.shape[2]);
    if (!rc) rc = take_features(m, images, &x, 1.0 / 255.0, ds, err);   /* pixels into [0, 1] */
    if (!rc && ny != nx)
        rc = nt_fail(err, NT_EINPUT, "%s: has %lld labels for %lld images", labels, (long long)ny, (long long)nx);
    if (total) {   /* the rows of the whole (limited) set, and where this part starts among them */
        int64_t count;
        *total = limit > 0 && limit < nx ? limit : nx;
        nt_parallel_shard(*total, part, parts, first, &count);
    }
    if (!rc) rc = labels_to_targets(m, labels, y.data, ds->n, ds, err);
    nt_array_free(&x);
    nt_array_free(&y);
    return rc;
}

/* teacher: x ~ N(0, I), f = teacher network (weights N(0, 1/n_in), zero biases), then
 * class = argmax f (cross_entropy), sign f (logistic, exponential), f + noise (mse). */
static int load_teacher(const nt_spec *spec, nt_dataset *ds, nt_error *err)
{
    const nt_model *m = &spec->model;
    const nt_data_spec *d = &spec->data;
    const int64_t n = d->n;
    const int K = m->output;
    int widths[NT_MAX_HIDDEN + 2], nw = 0, maxw = m->input;
    widths[nw++] = m->input;
    for (int i = 0; i < d->n_hidden; i++) widths[nw++] = d->hidden[i];
    widths[nw++] = K;
    for (int i = 0; i < nw; i++) if (widths[i] > maxw) maxw = widths[i];
    /* the teacher's weights are drawn once and held, like a model's: refused when they (and
     * the samples) would not fit */
    double n_weights = 0;
    for (int l = 1; l < nw; l++) n_weights += (double)widths[l - 1] * widths[l];
    if (nt_memory_fits(err, 8.0 * (n_weights + (double)n * (m->input + K)), 0, NULL,
                       "%s: data.hidden: the teacher network (%.0f weights) with %lld samples", spec->path, n_weights,
                       (long long)n))
        return NT_EINPUT;
    ds->n = n;
    ds->dim = m->input;
    ds->x = malloc(sizeof(double) * (size_t)(n * m->input));
    double *a = malloc(sizeof(double) * maxw), *b = malloc(sizeof(double) * maxw);
    double *lab = malloc(sizeof(double) * (size_t)(n * K)), *Wt[NT_MAX_HIDDEN + 2] = {0};
    int ok = ds->x && a && b && lab;
    for (int l = 1; l < nw && ok; l++) {   /* W_l[o][i] ~ N(0, 1), stream l */
        const int64_t size = (int64_t)widths[l - 1] * widths[l];
        ok = (Wt[l] = malloc(sizeof(double) * (size_t)size)) != NULL;
        for (int64_t j = 0; ok && j < size; j++) Wt[l][j] = nt_rand_normal(d->seed, (uint64_t)l, (uint64_t)j);
    }
    if (!ok) {
        free(a); free(b); free(lab);
        for (int l = 0; l < nw; l++) free(Wt[l]);
        return nt_fail(err, NT_EFAIL, "%s: data: out of memory for the teacher's samples", spec->path);
    }
    for (int64_t i = 0; i < n * m->input; i++) ds->x[i] = nt_rand_normal(d->seed, 0, (uint64_t)i);
    for (int64_t s = 0; s < n; s++) {
        memcpy(a, ds->x + s * m->input, sizeof(double) * m->input);
        for (int l = 1; l < nw; l++) {
            int ni = widths[l - 1], no = widths[l];
            for (int o = 0; o < no; o++) {
                double z = 0;
                for (int i = 0; i < ni; i++)
                    z += a[i] * Wt[l][(int64_t)o * ni + i] / sqrt(ni);
                if (l < nw - 1) nt_act_eval(d->teacher_act, 0.01, z, &z, NULL, NULL);
                b[o] = z;
            }
            memcpy(a, b, sizeof(double) * no);
        }
        for (int o = 0; o < K; o++) lab[s * K + o] = a[o];
    }
    ds->ydim = m->loss == NT_LOSS_MSE ? K : 1;
    ds->y = malloc(sizeof(double) * (size_t)(n * ds->ydim));
    for (int64_t s = 0; s < n && ds->y; s++) {
        const double *f = lab + s * K;
        if (m->loss == NT_LOSS_MSE) {
            for (int o = 0; o < K; o++)
                ds->y[s * K + o] = f[o] + d->noise * nt_rand_normal(d->seed, 1000, (uint64_t)(s * K + o));
        } else if (m->loss == NT_LOSS_CROSS_ENTROPY) {
            int c = 0;
            for (int o = 1; o < K; o++) if (f[o] > f[c]) c = o;
            ds->y[s] = c;
        } else {
            ds->y[s] = f[0] >= 0 ? 1 : -1;
        }
    }
    free(a); free(b); free(lab);
    for (int l = 0; l < nw; l++) free(Wt[l]);
    return ds->y ? NT_OK : nt_fail(err, NT_EFAIL, "%s: data: out of memory for the teacher's labels", spec->path);
}

/* keep the first `limit` samples */
static void truncate_rows(nt_dataset *ds, int64_t limit)
{
    if (limit > 0 && limit < ds->n) ds->n = limit;
}

/* move a seeded random fraction of train into test (Fisher-Yates on row indices) */
static void split(nt_dataset *tr, nt_dataset *te, double frac, uint64_t seed)
{
    int64_t n = tr->n, nt = (int64_t)floor(frac * (double)n);
    if (nt <= 0 || nt >= n) return;
    int64_t *perm = malloc(sizeof(int64_t) * (size_t)n);
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(nt_rand_u64(seed, 77, (uint64_t)i) % (uint64_t)(i + 1));
        int64_t t = perm[i]; perm[i] = perm[j]; perm[j] = t;
    }
    nt_dataset a = { .dim = tr->dim, .ydim = tr->ydim };
    nt_dataset parts[2] = { a, a };
    parts[0].n = nt;
    parts[1].n = n - nt;
    for (int p = 0; p < 2; p++) {
        parts[p].x = malloc(sizeof(double) * (size_t)(parts[p].n * tr->dim));
        parts[p].y = malloc(sizeof(double) * (size_t)(parts[p].n * tr->ydim));
        for (int64_t r = 0; r < parts[p].n; r++) {
            int64_t src = perm[p ? nt + r : r];
            memcpy(parts[p].x + r * tr->dim, tr->x + src * tr->dim, sizeof(double) * tr->dim);
            memcpy(parts[p].y + r * tr->ydim, tr->y + src * tr->ydim, sizeof(double) * tr->ydim);
        }
    }
    free(perm);
    nt_dataset_free(tr);
    *te = parts[0];
    *tr = parts[1];
}

/* z-score every feature with the training set's mean and standard deviation */
static void standardize(nt_dataset *tr, nt_dataset *te)
{
    for (int j = 0; j < tr->dim; j++) {
        double mean = 0, var = 0;
        for (int64_t i = 0; i < tr->n; i++) mean += tr->x[i * tr->dim + j];
        mean /= (double)tr->n;
        for (int64_t i = 0; i < tr->n; i++) {
            double t = tr->x[i * tr->dim + j] - mean;
            var += t * t;
        }
        double sd = sqrt(var / (double)tr->n);
        if (sd == 0) sd = 1;
        for (int64_t i = 0; i < tr->n; i++) tr->x[i * tr->dim + j] = (tr->x[i * tr->dim + j] - mean) / sd;
        for (int64_t i = 0; i < te->n; i++) te->x[i * te->dim + j] = (te->x[i * te->dim + j] - mean) / sd;
    }
}

/* sequence: T tokens of D features, x_t ~ N(0, I); the target needs attention to one token:
 * t* = argmax_t x_t[0] (the token with the largest first feature), scores
 * s_k = u_k^T x_{t*} / sqrt(D) with u_k ~ N(0, I) (seeded), then the class argmax s
 * (cross_entropy), sign s_0 (logistic, exponential) or s + noise (mse). */
static int load_sequence(const nt_spec *spec, nt_dataset *ds, nt_error *err)
{
    const nt_model *m = &spec->model;
    const nt_data_spec *d = &spec->data;
    if (!m->sequence[0])
        return nt_fail(err, NT_EINPUT, "%s: data.source: 'sequence' needs a sequence model (model.input: [T, D])", spec->path);
    const int64_t n = d->n, T = m->sequence[0], D = m->sequence[1], K = m->output;
    ds->n = n;
    ds->dim = m->input;
    ds->ydim = m->loss == NT_LOSS_MSE ? (int)K : 1;
    ds->x = malloc(sizeof(double) * (size_t)(n * T * D));
    ds->y = malloc(sizeof(double) * (size_t)(n * ds->ydim));
    double *sc = malloc(sizeof(double) * (size_t)K);
    if (!ds->x || !ds->y || !sc) {
        free(sc);
        return nt_fail(err, NT_EINPUT, "%s: data: %lld sequences of %lld x %lld do not fit in memory", spec->path,
                       (long long)n, (long long)T, (long long)D);
    }
    for (int64_t i = 0; i < n * T * D; i++) ds->x[i] = nt_rand_normal(d->seed, 0, (uint64_t)i);
    for (int64_t s = 0; s < n; s++) {
        const double *x = ds->x + s * T * D;
        int64_t ts = 0;
        for (int64_t t = 1; t < T; t++) if (x[t * D] > x[ts * D]) ts = t;
        int best = 0;
        for (int64_t k = 0; k < K; k++) {
            sc[k] = 0;
            for (int64_t f = 0; f < D; f++) sc[k] += nt_rand_normal(d->seed, 1, (uint64_t)(k * D + f)) * x[ts * D + f];
            sc[k] /= sqrt((double)D);
            if (sc[k] > sc[best]) best = (int)k;
        }
        for (int64_t k = 0; m->loss == NT_LOSS_MSE && k < K; k++)
            ds->y[s * K + k] = sc[k] + d->noise * nt_rand_normal(d->seed, 1000, (uint64_t)(s * K + k));
        if (m->loss == NT_LOSS_CROSS_ENTROPY) ds->y[s] = best;
        else if (m->loss != NT_LOSS_MSE) ds->y[s] = sc[0] >= 0 ? 1 : -1;
    }
    free(sc);
    return NT_OK;
}

static const char *source_names[] = {"npy", "csv", "idx", "teacher", "builtin", "sequence"};

int nt_data_load(const nt_spec *spec, nt_data *data, nt_error *err)
{
    const nt_data_spec *d = &spec->data;
    const nt_model *m = &spec->model;
    memset(data, 0, sizeof *data);
    int rc = NT_OK;
    nt_array t = {0};
    switch (d->source) {
    case NT_DATA_NPY: rc = load_npy(m, d, 0, 1, data, err); break;
    case NT_DATA_IDX:
        rc = load_idx(m, d->images, d->labels, d->limit, 0, 1, &data->train, NULL, NULL, err);
        if (!rc && d->test_images[0])
            rc = load_idx(m, d->test_images, d->test_labels, d->limit, 0, 1, &data->test, NULL, NULL, err);
        break;
    case NT_DATA_TEACHER: rc = load_teacher(spec, &data->train, err); break;
    case NT_DATA_SEQUENCE: rc = load_sequence(spec, &data->train, err); break;
    case NT_DATA_CSV:
    case NT_DATA_BUILTIN: {
        char src[NT_PATH_MAX + 16];
        if (d->source == NT_DATA_CSV) { snprintf(src, sizeof src, "%s", d->path); rc = nt_csv_read(d->path, &t, err); }
        else { snprintf(src, sizeof src, "builtin:%s", d->name); rc = nt_builtin_csv(d->name, &t, err); }
        if (!rc) rc = from_table(m, src, &t, d->label_column, &data->train, err);
        nt_array_free(&t);
        break;
    }
    }
    if (rc) { nt_data_free(data); return rc; }
    truncate_rows(&data->train, d->limit);
    truncate_rows(&data->test, d->limit);
    if (d->test_fraction > 0 && data->test.n == 0) split(&data->train, &data->test, d->test_fraction, d->split_seed);
    if (d->standardize) standardize(&data->train, &data->test);
    snprintf(data->desc, sizeof data->desc, "%s%s%s: %lld train, %lld test samples of %d features",
             source_names[d->source], d->source == NT_DATA_BUILTIN ? ":" : "",
             d->source == NT_DATA_BUILTIN ? d->name : "", (long long)data->train.n,
             (long long)data->test.n, data->train.dim);
    return NT_OK;
}

/* A shard read as such where the format allows it (NPY without limit, IDX; neither with a
 * split or standardization, which need every row): only its rows are held and checked (IDX
 * is gzipped: the rows before them are decompressed and dropped), and the
 * whole set's hash is chained through the ranks in row order (nt_parallel_chain), equal to
 * the one a single process takes.  Otherwise the whole set is loaded, then cut. */
int nt_data_load_shard(const nt_spec *spec, int part, int parts, nt_data *data, nt_error *err)
{
    const nt_data_spec *d = &spec->data;
    if (parts <= 1) return nt_data_load(spec, data, err);
    const int npy = d->source == NT_DATA_NPY && d->limit == 0, idx = d->source == NT_DATA_IDX;
    if (!(npy || idx) || d->test_fraction > 0 || d->standardize) {
        int rc = nt_data_load(spec, data, err);
        if (!rc && (rc = nt_data_shard(data, part, parts, err))) nt_data_free(data);
        return rc;
    }
    memset(data, 0, sizeof *data);
    int rc = npy ? load_npy(&spec->model, d, part, parts, data, err)
                 : load_idx(&spec->model, d->images, d->labels, d->limit, part, parts, &data->train, &data->shard_start,
                            &data->shard_total, err);
    if (!rc && idx && d->test_images[0])   /* the test set: whole on every rank */
        rc = load_idx(&spec->model, d->test_images, d->test_labels, d->limit, 0, 1, &data->test, NULL, NULL, err);
    if (rc) nt_data_free(data);
    if ((rc = nt_parallel_agree(rc, err))) return rc;   /* the hash below needs every rank */
    const nt_dataset *tr = &data->train;
    int64_t dims[3] = {data->shard_total, tr->dim, tr->ydim};
    uint64_t h = nt_hash64(dims, sizeof dims, NT_HASH_INIT);   /* nt_dataset_hash's order: sizes, x, y */
    h = nt_parallel_chain(h, tr->x, sizeof(double) * (size_t)(tr->n * tr->dim));
    data->train_hash = nt_parallel_chain(h, tr->y, sizeof(double) * (size_t)(tr->n * tr->ydim));
    snprintf(data->desc, sizeof data->desc, "%s: %lld train, %lld test samples of %d features", source_names[d->source],
             (long long)data->shard_total, (long long)data->test.n, tr->dim);
    return NT_OK;
}

int nt_params_read(const char *path, const nt_model *m, double *theta, nt_error *err)
{
    nt_array a = {0};
    int rc = nt_npy_read(path, &a, err);
    if (rc) return rc;
    if (a.size != m->d || a.ndim < 1 || a.ndim > 2 || (a.ndim == 2 && a.shape[0] != 1))
        rc = nt_fail(err, NT_EINPUT, "%s: holds %lld values in %d dimensions; the model has d = %lld parameters (want shape (%lld,))",
                     path, (long long)a.size, a.ndim, (long long)m->d, (long long)m->d);
    for (int64_t i = 0; i < a.size && !rc; i++)
        if (!isfinite(a.data[i])) rc = nt_fail(err, NT_EINPUT, "%s: element %lld is not finite", path, (long long)i);
    if (!rc) memcpy(theta, a.data, sizeof(double) * (size_t)m->d);
    nt_array_free(&a);
    return rc;
}
