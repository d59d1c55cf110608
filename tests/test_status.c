/* The status convention of the engine's calls and everything built on them: a data set
 * not shaped for the model, or a reduction hook that fails (another shard's error), comes
 * back as a status with the message, through the gradient, the products, the identity
 * checker and the spectrum; never a crash or a silent number. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include "noether.h"
#include "helpers.h"

static const char spec_json[] =
    "{\"model\": {\"input\": 4, \"layers\": [{\"dense\": 5}, {\"act\": \"tanh\"}, {\"dense\": 3}],"
    " \"loss\": \"cross_entropy\"}, \"data\": {\"source\": \"teacher\", \"n\": 40, \"seed\": 2},"
    " \"init\": {\"seed\": 1, \"bias_std\": 0.2}}";

typedef struct {
    nt_spec spec;
    nt_data data;
    nt_engine *e;
    double *theta, *g, *V, *HV;
    nt_transform *list;
    int n;
} fixture;

static void setup(fixture *f)
{
    nt_error err = {0};
    memset(f, 0, sizeof *f);
    cr_assert_eq(nt_spec_parse(spec_json, "status.json", &f->spec, &err), NT_OK, "%s", err.msg);
    cr_assert_eq(nt_data_load(&f->spec, &f->data, &err), NT_OK, "%s", err.msg);
    const int64_t d = f->spec.model.d;
    f->e = nt_engine_new(&f->spec.model, 64, 4);
    f->theta = malloc(sizeof(double) * (size_t)d);
    f->g = malloc(sizeof(double) * (size_t)d);
    f->V = malloc(sizeof(double) * (size_t)(2 * d));
    f->HV = malloc(sizeof(double) * (size_t)(2 * d));
    nt_init_params(&f->spec.model, &f->spec.init, f->theta);
    for (int64_t i = 0; i < 2 * d; i++) f->V[i] = nt_rand_normal(5, 0, (uint64_t)i);
    cr_assert_eq(nt_catalogue(&f->spec.model, &f->list, &f->n), NT_OK);
}

static void teardown(fixture *f)
{
    nt_transforms_free(f->list, f->n);
    nt_engine_free(f->e);
    nt_data_free(&f->data);
    nt_spec_free(&f->spec);
    free(f->theta); free(f->g); free(f->V); free(f->HV);
}

Test(status, a_data_set_of_the_wrong_width_is_refused_by_every_call_with_the_widths_named)
{
    fixture f;
    setup(&f);
    nt_dataset good = f.data.train, wide = good, no_y = good;
    wide.dim = good.dim + 1;
    wide.n = good.n * good.dim / wide.dim;   /* the same buffer read as wider rows */
    no_y.y = NULL;
    nt_error err = {0};
    double L = NAN, *F = malloc(sizeof(double) * (size_t)(good.n * f.spec.model.output));
    /* the control: the same calls on the data set as loaded */
    cr_assert_eq(nt_grad(f.e, f.theta, &good, &L, f.g, &err), NT_OK, "%s", err.msg);
    cr_assert(isfinite(L));
    cr_assert_eq(nt_hvp(f.e, f.theta, &good, 2, f.V, f.HV, NULL, NULL, &err), NT_OK, "%s", err.msg);
    cr_assert_eq(nt_outputs(f.e, f.theta, &no_y, F, &err), NT_OK, "outputs need no targets: %s", err.msg);

    memset(&err, 0, sizeof err);
    cr_assert_eq(nt_grad(f.e, f.theta, &wide, &L, f.g, &err), NT_EINPUT);
    cr_assert(strstr(err.msg, "5 features per sample, the model takes 4"), "%s", err.msg);
    cr_assert_eq(nt_loss_value(f.e, f.theta, &wide, &L, NULL), NT_EINPUT, "err may be NULL");
    cr_assert_eq(nt_hvp(f.e, f.theta, &wide, 2, f.V, f.HV, NULL, NULL, &err), NT_EINPUT);
    cr_assert_eq(nt_outputs(f.e, f.theta, &wide, F, &err), NT_EINPUT);
    memset(&err, 0, sizeof err);
    cr_assert_eq(nt_hvp(f.e, f.theta, &no_y, 1, f.V, f.HV, NULL, NULL, &err), NT_EINPUT);
    cr_assert(strstr(err.msg, "0 targets per sample, cross_entropy loss with 3 outputs takes 1"), "%s", err.msg);
    cr_assert_eq(nt_hvp(f.e, f.theta, &good, 0, f.V, f.HV, NULL, NULL, &err), NT_EINPUT, "k = 0");
    /* a freeze on a data set the calls refuse is declined, and the calls still refuse it */
    cr_assert_eq(nt_engine_freeze(f.e, f.theta, &wide, 1e9), 0);
    cr_assert_eq(nt_hvp(f.e, f.theta, &wide, 1, f.V, f.HV, NULL, NULL, &err), NT_EINPUT);
    nt_check_result *r = malloc(sizeof *r * (size_t)nt_check_count(f.list, f.n));
    cr_assert_eq(nt_check(f.e, &f.spec.model, &wide, f.theta, f.list, f.n, NT_IDENTITY_TOL, r, &err), NT_EINPUT);
    free(r);
    free(F);
    teardown(&f);
}

/* A hook standing for an allreduce in which another rank failed after `ok_calls` calls. */
typedef struct {
    int calls, ok_calls;
} failing;

static int failing_fn(void *ctx, double *sums, int64_t len, int64_t *n, nt_error *err)
{
    (void)sums; (void)len; (void)n;
    failing *h = ctx;
    if (h->calls++ < h->ok_calls) return NT_OK;   /* a single shard: the sums are the totals */
    return nt_fail(err, NT_EFAIL, "rank 1: labels.npy: row 7 is not finite");
}

Test(status, a_failing_reduction_reaches_the_caller_of_every_analysis_with_its_message)
{
    fixture f;
    setup(&f);
    const nt_dataset *ds = &f.data.train;
    nt_error err = {0};
    failing h = { 0, 1000000 };
    cr_assert_eq(nt_engine_set_reduce(f.e, failing_fn, &h, &err), NT_OK, "%s", err.msg);
    /* the control: a hook that succeeds changes nothing */
    double L1, L2;
    cr_assert_eq(nt_grad(f.e, f.theta, ds, &L1, f.g, &err), NT_OK, "%s", err.msg);
    cr_assert_eq(nt_engine_set_reduce(f.e, NULL, NULL, &err), NT_OK);
    cr_assert_eq(nt_grad(f.e, f.theta, ds, &L2, f.HV, &err), NT_OK);
    cr_assert_eq(L1, L2);
    cr_assert_eq(nt_rel_diff(f.spec.model.d, f.g, f.HV), 0);

    h = (failing){ 0, 0 };
    cr_assert_eq(nt_engine_set_reduce(f.e, failing_fn, &h, &err), NT_OK, "%s", err.msg);
    memset(&err, 0, sizeof err);
    cr_assert_eq(nt_grad(f.e, f.theta, ds, &L1, f.g, &err), NT_EFAIL);
    cr_assert_str_eq(err.msg, "rank 1: labels.npy: row 7 is not finite");
    h.calls = 0;
    const int64_t d = f.spec.model.d;
    double *H = malloc(sizeof(double) * (size_t)(d * d));
    cr_assert_eq(nt_hessian(f.e, f.theta, ds, H, NULL), NT_EFAIL);
    cr_assert_eq(h.calls, 1, "the Hessian stops at its first block (%d calls)", h.calls);
    free(H);
    /* the identity checker and the spectrum (gradient, eigensolver, trace, density, the
     * predictions): counted with a hook that never fails, then failing at the first product,
     * at a quarter, a half, three quarters of them and at the last */
    nt_check_result *r = malloc(sizeof *r * (size_t)nt_check_count(f.list, f.n));
    nt_spectrum_opts o = { .top = 2, .bottom = 2, .method = NT_METHOD_DENSE, .trace = 1, .density = 1 };
    nt_spectrum sp;
    for (int what = 0; what < 2; what++) {
        h = (failing){ 0, 1000000 };
        int rc = what ? nt_spectrum_analyse(f.e, &f.spec.model, ds, f.list, f.n, f.theta, &o, &sp, &err)
                      : nt_check(f.e, &f.spec.model, ds, f.theta, f.list, f.n, NT_IDENTITY_TOL, r, &err);
        cr_assert_eq(rc, NT_OK, "%s", err.msg);
        if (what) nt_spectrum_free(&sp);
        const int total = h.calls;
        cr_log_info("%s: %d reductions", what ? "spectrum" : "check", total);
        cr_assert_geq(total, 5);
        const int at[5] = { 0, total / 4, total / 2, 3 * total / 4, total - 1 };
        for (int i = 0; i < 5; i++) {
            h = (failing){ 0, at[i] };
            memset(&err, 0, sizeof err);
            rc = what ? nt_spectrum_analyse(f.e, &f.spec.model, ds, f.list, f.n, f.theta, &o, &sp, &err)
                      : nt_check(f.e, &f.spec.model, ds, f.theta, f.list, f.n, NT_IDENTITY_TOL, r, &err);
            cr_assert_eq(rc, NT_EFAIL, "%s failing after %d of %d reductions", what ? "spectrum" : "check", at[i], total);
            cr_assert_str_eq(err.msg, "rank 1: labels.npy: row 7 is not finite");
            cr_assert_eq(h.calls, at[i] + 1, "no product after the failure (%d calls)", h.calls);
        }
    }
    free(r);
    teardown(&f);
}
