/* resume.c: a training run's state (nt_train_state) and its records in a checkpoint.
 * What makes a resumed run bit-identical to an uninterrupted one: theta, the optimizer's
 * accumulators, Adam's step count (= the step) and every ledger accumulator of
 * nt_quantity (the logged losses are of theta itself); minibatches need nothing (a pure function of
 * (seed, epoch), train.c).  What a checkpoint is a run of is recorded beside it (a hash of
 * the spec's text, a hash of the data, d, the ledger's quantity names, a hash of every
 * file the spec refers to: a transformation's A.npy may change while the spec's text does
 * not), and loading refuses a checkpoint that does not match, naming the record or file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "noether.h"

enum { FORMAT = 3, QFIELDS = 10 };   /* 3: Q(0) and the gradient-flow source, no loss sums; the spec's files
                                      * hashed, the rows beside the file */

int nt_train_state_init(nt_train_state *s, int64_t d)
{
    memset(s, 0, sizeof *s);
    s->d = d;
    s->opt = calloc((size_t)(3 * d), sizeof(double));
    return s->opt ? NT_OK : NT_EFAIL;
}

void nt_train_state_free(nt_train_state *s)
{
    free(s->opt);
    free(s->files);
    free(s->file_hash);
    s->opt = NULL;
    s->files = NULL;
    s->file_hash = NULL;
    s->n_files = 0;
}

static uint64_t data_hash(const nt_data *data);

/* FNV-1a of a file's bytes; 0 when it cannot be read */
static int64_t file_hash(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    unsigned char buf[1 << 16];
    uint64_t h = NT_HASH_INIT;
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) h = nt_hash64(buf, got, h);
    int bad = ferror(f);
    fclose(f);
    return bad ? 0 : (int64_t)h;
}

void nt_train_state_files(nt_train_state *s, const nt_spec *spec, const nt_data *data)
{
    s->data_hash = (int64_t)data_hash(data);
    const nt_data_spec *ds = &spec->data;
    const char **p = malloc(sizeof(char *) * (size_t)(7 + 3 * spec->n_transforms));
    int n = 0;
    const char *named[7] = {ds->x, ds->y, ds->path, ds->images, ds->labels, ds->test_images, ds->test_labels};
    for (int i = 0; i < 7; i++) if (named[i][0]) p[n++] = named[i];
    for (int i = 0; i < spec->n_transforms; i++) {
        const nt_transform_spec *t = &spec->transforms[i];
        if (t->matrix[0]) p[n++] = t->matrix;
        if (t->shift[0]) p[n++] = t->shift;
        if (t->output[0]) p[n++] = t->output;
    }
    size_t len = 1;
    for (int i = 0; i < n; i++) len += strlen(p[i]) + 1;
    free(s->files);
    free(s->file_hash);
    s->files = malloc(len);
    s->file_hash = malloc(sizeof(int64_t) * (size_t)(n + 1));
    s->files[0] = 0;
    for (int i = 0; i < n; i++) {
        strcat(strcat(s->files, p[i]), "\n");
        s->file_hash[i] = file_hash(p[i]);
    }
    s->n_files = n;
    free(p);
}

uint64_t nt_dataset_hash(const nt_dataset *ds, uint64_t h)
{
    int64_t dims[3] = {ds->n, ds->dim, ds->ydim};
    h = nt_hash64(dims, sizeof dims, h);
    if (ds->n <= 0) return h;
    h = nt_hash64(ds->x, sizeof(double) * (size_t)(ds->n * ds->dim), h);
    return nt_hash64(ds->y, sizeof(double) * (size_t)(ds->n * ds->ydim), h);
}

static uint64_t data_hash(const nt_data *data)
{
    /* a shard's run is a run on the whole set: its hash, taken before sharding */
    uint64_t train = data->shard_total ? data->train_hash : nt_dataset_hash(&data->train, NT_HASH_INIT);
    return nt_dataset_hash(&data->test, train);
}

/* the quantities' names, one a line */
static char *names(const nt_quantity *q, int nq, int64_t *len)
{
    size_t cap = 1, n = 0;
    for (int j = 0; j < nq; j++) cap += strlen(q[j].name) + 1;
    char *s = malloc(cap);
    for (int j = 0; j < nq; j++) n += (size_t)sprintf(s + n, "%s\n", q[j].name);
    s[n] = 0;
    *len = (int64_t)n;
    return s;
}

void nt_train_state_save(nt_checkpoint *c, const nt_spec *spec, const nt_data *data,
                         const nt_train_state *s, const double *theta, const nt_quantity *q, int nq)
{
    const int64_t d = s->d;
    int64_t v[5] = {FORMAT, d, (int64_t)spec->hash, s->files ? s->data_hash : (int64_t)data_hash(data), s->step}, len;
    nt_checkpoint_put_i64(c, "format", 1, &v[0]);
    nt_checkpoint_put_i64(c, "model.d", 1, &v[1]);
    nt_checkpoint_put_i64(c, "spec.hash", 1, &v[2]);
    nt_checkpoint_put_bytes(c, "spec.path", (int64_t)strlen(spec->path), spec->path);
    nt_checkpoint_put_i64(c, "data.hash", 1, &v[3]);
    nt_checkpoint_put_bytes(c, "spec.files", s->files ? (int64_t)strlen(s->files) : 0, s->files ? s->files : "");
    nt_checkpoint_put_i64(c, "spec.file_hashes", s->n_files, s->file_hash);
    char *nm = names(q, nq, &len);
    nt_checkpoint_put_bytes(c, "ledger.names", len, nm);
    free(nm);
    nt_checkpoint_put_i64(c, "train.step", 1, &v[4]);
    nt_checkpoint_put_f64(c, "train.seconds", 1, &s->seconds);
    nt_checkpoint_put_f64(c, "train.optimizer", 3 * d, s->opt);
    nt_checkpoint_put_f64(c, "theta", d, theta);
    double *acc = malloc(sizeof(double) * (size_t)(QFIELDS * nq + 1));
    for (int j = 0; j < nq; j++) {
        const nt_quantity *Q = &q[j];
        double f[QFIELDS] = {Q->measured, Q->predicted, Q->gradient_flow, Q->first, Q->decay, Q->second,
                             Q->size, Q->max_gap, Q->initial, Q->flow_source};
        memcpy(acc + QFIELDS * j, f, sizeof f);
    }
    nt_checkpoint_put_f64(c, "ledger.accumulators", QFIELDS * nq, acc);
    free(acc);
}

#define TRY(x) do { int rc_ = (x); if (rc_) return rc_; } while (0)

int nt_train_state_load(const nt_checkpoint *c, const nt_spec *spec, const nt_data *data,
                        nt_train_state *s, double *theta, nt_quantity *q, int nq, nt_error *err)
{
    const char *path = nt_checkpoint_path(c);
    const int64_t d = spec->model.d;
    int64_t v, len;
    const char *text;
    TRY(nt_checkpoint_get_i64(c, "format", 1, &v, err));
    if (v != FORMAT)
        return nt_fail(err, NT_EINPUT, "%s: record 'format': version %lld, this noether reads %d", path,
                       (long long)v, FORMAT);
    TRY(nt_checkpoint_get_i64(c, "model.d", 1, &v, err));
    if (v != d)
        return nt_fail(err, NT_EINPUT, "%s: record 'model.d': a model of d = %lld parameters, the spec's has d = %lld",
                       path, (long long)v, (long long)d);
    TRY(nt_checkpoint_get_i64(c, "spec.hash", 1, &v, err));
    if ((uint64_t)v != spec->hash) {
        TRY(nt_checkpoint_get_bytes(c, "spec.path", &text, &len, err));
        return nt_fail(err, NT_EINPUT, "%s: record 'spec.hash': the run was started from another spec (%s as it "
                       "was then), not %s as it is now; resume with the spec unchanged", path, text, spec->path);
    }
    if (!s->files) nt_train_state_files(s, spec, data);
    TRY(nt_checkpoint_get_i64(c, "data.hash", 1, &v, err));
    if (v != s->data_hash)
        return nt_fail(err, NT_EINPUT, "%s: record 'data.hash': the spec's data (%s) differ from the data the run "
                       "was started on", path, data->desc);
    TRY(nt_checkpoint_get_bytes(c, "spec.files", &text, &len, err));
    if (len != (int64_t)strlen(s->files) || memcmp(text, s->files, (size_t)len))
        return nt_fail(err, NT_EINPUT, "%s: record 'spec.files': the spec refers to other files than when the run "
                       "was started (%s moved: its relative paths name other files); resume with the spec where it "
                       "was", path, spec->path);
    {
        int64_t *h = malloc(sizeof(int64_t) * (size_t)(s->n_files + 1));
        int rc = nt_checkpoint_get_i64(c, "spec.file_hashes", s->n_files, h, err);
        const char *name = s->files;
        for (int i = 0; i < s->n_files && !rc; i++, name = strchr(name, '\n') + 1)
            if (h[i] != s->file_hash[i])
                rc = nt_fail(err, NT_EINPUT, "%s: record 'spec.file_hashes': %.*s changed since the run was started "
                             "(its bytes hash differently); resume with the file as it was", path,
                             (int)(strchr(name, '\n') - name), name);
        free(h);
        if (rc) return rc;
    }
    TRY(nt_checkpoint_get_bytes(c, "ledger.names", &text, &len, err));
    char *want = names(q, nq, &v);
    int same = len == v && !memcmp(text, want, (size_t)len);
    free(want);
    if (!same)
        return nt_fail(err, NT_EINPUT, "%s: record 'ledger.names': the ledger's quantities differ from this "
                       "model's (another catalogue or other declared transformations)", path);
    TRY(nt_checkpoint_get_i64(c, "train.step", 1, &s->step, err));
    if (s->step < 0 || s->step > spec->train.steps)
        return nt_fail(err, NT_EINPUT, "%s: record 'train.step': step %lld is outside 0..%lld", path,
                       (long long)s->step, (long long)spec->train.steps);
    TRY(nt_checkpoint_get_f64(c, "train.seconds", 1, &s->seconds, err));
    TRY(nt_checkpoint_get_f64(c, "train.optimizer", 3 * d, s->opt, err));
    TRY(nt_checkpoint_get_f64(c, "theta", d, theta, err));
    double *acc = malloc(sizeof(double) * (size_t)(QFIELDS * nq + 1));
    int rc = nt_checkpoint_get_f64(c, "ledger.accumulators", QFIELDS * nq, acc, err);
    for (int j = 0; j < nq && !rc; j++) {
        nt_quantity *Q = &q[j];
        const double *f = acc + QFIELDS * j;
        Q->measured = f[0]; Q->predicted = f[1]; Q->gradient_flow = f[2];
        Q->first = f[3]; Q->decay = f[4]; Q->second = f[5];
        Q->size = f[6]; Q->max_gap = f[7];
        Q->initial = f[8]; Q->flow_source = f[9];
    }
    free(acc);
    s->started = 1;
    s->stopped = 0;
    return rc;
}

void nt_train_log_save(nt_checkpoint *c, const char *name, const nt_train_log *L)
{
    const double x[9] = {(double)L->step, L->loss, L->loss_gamma, L->accuracy, L->test_loss, L->test_accuracy,
                         L->norm2, L->margin, L->seconds};
    nt_checkpoint_put_f64(c, name, 9, x);
}

int nt_train_log_load(const nt_checkpoint *c, const char *name, nt_train_log *L, nt_error *err)
{
    double x[9];
    int rc = nt_checkpoint_get_f64(c, name, 9, x, err);
    if (!rc) *L = (nt_train_log){ (int64_t)x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7], x[8] };
    return rc;
}
