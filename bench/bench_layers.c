/* bench_layers.c: `make bench`, the layers beyond MLPs (docs/layers.md): a batch norm CNN
 * on 512 Fashion-MNIST images (1 x 28 x 28) and a pre-norm attention block on 512 sequences
 * of the synthetic task (16 tokens x 32 features, 4 heads).  For each: gradient, one HVP and
 * a block of 16 HVPs (per vector), as ratios to the gradient, and PyTorch on the same
 * network, parameters, data and vectors (tools/torch_spec.py: double backward), with the
 * agreement of loss, gradient and H v.  Medians after a warm-up; never fails on timing. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "noether.h"

#define FMNIST "/usr/share/datasets/fashion-mnist/"
#define K_BLOCK 16

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* median ms of reps calls of nt_grad (k = 0) or nt_hvp with k vectors, after a warm-up */
static double timed(nt_engine *e, const double *theta, const nt_dataset *ds, int k, const double *V, double *HV,
                    double *g, int reps)
{
    double t[32];
    for (int r = -1; r < reps; r++) {
        double t0 = now_ms();
        nt_error err;
        if (k ? nt_hvp(e, theta, ds, k, V, HV, NULL, NULL, &err) : nt_grad(e, theta, ds, NULL, g, &err)) {
            fprintf(stderr, "noether-bench: %s\n", err.msg);
            exit(1);
        }
        if (r >= 0) t[r] = now_ms() - t0;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp);
    return t[reps / 2];
}

static void one(const char *name, const char *model_json, const char *data_json, const char *src, FILE *csv)
{
    char json[4096];
    snprintf(json, sizeof json, "{\"model\": %s, \"data\": %s, \"init\": {\"seed\": 0, \"bias_std\": 0.1}}", model_json, data_json);
    nt_spec spec;
    nt_data data;
    nt_error err = {0};
    if (nt_spec_parse(json, "<bench>", &spec, &err) || nt_data_load(&spec, &data, &err)) {
        printf("   %s: skipped (%s)\n", name, err.msg);
        return;
    }
    const nt_model *m = &spec.model;
    const nt_dataset *ds = &data.train;
    const int64_t d = m->d;
    double *theta = malloc(sizeof(double) * d), *g = malloc(sizeof(double) * d);
    double *V = malloc(sizeof(double) * d * K_BLOCK), *HV = malloc(sizeof(double) * d * K_BLOCK);
    nt_init_params(m, &spec.init, theta);
    for (int64_t i = 0; i < d * K_BLOCK; i++) V[i] = nt_rand_normal(7, 0, (uint64_t)i);
    nt_engine *e = nt_engine_new(m, ds->n, K_BLOCK);
    double tg = timed(e, theta, ds, 0, V, HV, g, 9);
    double t1 = timed(e, theta, ds, 1, V, HV, g, 7);
    double t16 = timed(e, theta, ds, K_BLOCK, V, HV, g, 3) / K_BLOCK;
    double loss = NAN;
    if (nt_hvp(e, theta, ds, 1, V, HV, g, &loss, &err)) printf("   %s: %s\n", name, err.msg);
    printf("\n   %s: %s; d = %lld\n", name, data.desc, (long long)d);
    printf("   noether  gradient %8.2f ms   HVP %8.2f ms = %.2f x gradient   block of 16 per vector %8.2f ms = %.2f x gradient\n",
           tg, t1, t1 / tg, t16, t16 / tg);
    fprintf(csv, "%s_grad_ms,%.6g,ms\n%s_hvp1_ms,%.6g,ms\n%s_hvp16_per_vec_ms,%.6g,ms\n", name, tg, name, t1, name, t16);
    fprintf(csv, "%s_hvp1_over_grad,%.6g,ratio\n%s_hvp16_per_vec_over_grad,%.6g,ratio\n", name, t1 / tg, name, t16 / tg);

    char dir[] = "/tmp/noether-bench-layers-XXXXXX", p[6][NT_PATH_MAX + 40], cmd[8 * NT_PATH_MAX];
    const char *names[6] = {"model.json", "theta.npy", "v.npy", "x.npy", "y.npy", "out.npy"};
    if (access("/usr/bin/python3", X_OK) != 0 || !mkdtemp(dir)) {
        printf("   PyTorch comparison skipped: no /usr/bin/python3 or no temporary folder\n");
    } else {
        for (int i = 0; i < 6; i++) snprintf(p[i], sizeof p[i], "%s/%s", dir, names[i]);
        FILE *f = fopen(p[0], "w");
        if (f) { fputs(model_json, f); fclose(f); }
        int64_t sd[2] = {K_BLOCK, d}, sx[2] = {ds->n, ds->dim}, sy[2] = {ds->n, ds->ydim};
        nt_npy_write(p[1], theta, 1, sd + 1, &err);
        nt_npy_write(p[2], V, 2, sd, &err);
        nt_npy_write(p[3], ds->x, 2, sx, &err);
        nt_npy_write(p[4], ds->y, 2, sy, &err);
        snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/tools/torch_spec.py' %s %s %s %s %s %s 0 --time", src,
                 p[0], p[1], p[2], p[3], p[4], p[5]);
        fflush(stdout);
        FILE *pp = popen(cmd, "r");
        char line[512];
        double tt[3] = {-1, -1, -1};
        const char *keys[3] = {"torch_grad_ms ", "torch_hvp_ms ", "torch_hvp16_per_vec_ms "};
        while (pp && fgets(line, sizeof line, pp)) {
            for (int i = 0; i < 3; i++)
                if (!strncmp(line, keys[i], strlen(keys[i]))) tt[i] = atof(line + strlen(keys[i]));
            if (!strncmp(line, "torch_skip", 10)) printf("   PyTorch comparison skipped: %s", line + 11);
        }
        if (pp) pclose(pp);
        nt_array out = {0};
        if (tt[0] > 0 && nt_npy_read(p[5], &out, &err) == NT_OK && out.size == 1 + 2 * d) {
            double rl = fabs(loss - out.data[0]) / fabs(loss), rg = nt_rel_diff(d, g, out.data + 1);
            double rh = nt_rel_diff(d, HV, out.data + 1 + d);
            printf("   PyTorch  gradient %8.2f ms   HVP %8.2f ms (double backward)   16 HVPs per vector %8.2f ms\n",
                   tt[0], tt[1], tt[2]);
            printf("   PyTorch / noether: gradient %.2f, HVP %.2f, block of 16 %.2f (above 1: noether is faster)\n",
                   tt[0] / tg, tt[1] / t1, tt[2] / t16);
            printf("   noether / PyTorch: gradient %.2f x its time, HVP %.2f x%s\n", tg / tt[0], t1 / tt[1],
                   strcmp(name, "conv") ? "" : " (targets: <= 0.7, <= 0.5)");
            printf("   agreement with PyTorch: loss %.1e, gradient %.1e, H v %.1e (relative)\n", rl, rg, rh);
            fprintf(csv, "%s_torch_grad_ms,%.6g,ms\n%s_torch_hvp1_ms,%.6g,ms\n%s_torch_hvp16_per_vec_ms,%.6g,ms\n",
                    name, tt[0], name, tt[1], name, tt[2]);
            fprintf(csv, "%s_speedup_grad,%.6g,ratio\n%s_speedup_hvp1,%.6g,ratio\n%s_speedup_hvp16,%.6g,ratio\n",
                    name, tt[0] / tg, name, tt[1] / t1, name, tt[2] / t16);
            fprintf(csv, "%s_grad_rel_diff,%.3g,rel\n%s_hv_rel_diff,%.3g,rel\n", name, rg, name, rh);
        } else if (tt[0] <= 0) {
            printf("   PyTorch comparison: no timings from tools/torch_spec.py\n");
        }
        nt_array_free(&out);
        for (int i = 0; i < 6; i++) unlink(p[i]);
        rmdir(dir);
    }
    nt_engine_free(e);
    free(theta); free(g); free(V); free(HV);
    nt_data_free(&data);
    nt_spec_free(&spec);
}

void bench_layers(const char *src, FILE *csv)
{
    one("conv", "{\"input\": [1, 28, 28], \"layers\": [{\"conv\": 8, \"kernel\": 3, \"stride\": 2, "
        "\"padding\": 1}, {\"norm\": \"batch\", \"eps\": 0}, {\"act\": \"relu\"}, {\"conv\": 16, \"kernel\": 3, \"stride\": 2, "
        "\"padding\": 1}, {\"act\": \"relu\"}, {\"pool\": \"avg\", \"kernel\": 2}, {\"flatten\": true}, {\"dense\": 10}], "
        "\"loss\": \"cross_entropy\"}",
        "{\"source\": \"idx\", \"images\": \"" FMNIST "train-images-idx3-ubyte.gz\", \"labels\": \"" FMNIST
        "train-labels-idx1-ubyte.gz\", \"limit\": 512}", src, csv);
    one("attention", "{\"input\": [16, 32], \"layers\": [{\"dense\": 32}, {\"residual\": ["
        "{\"norm\": \"layer\"}, {\"attention\": 4, \"causal\": true}]}, {\"norm\": \"layer\"}, {\"pool\": \"tokens\"}, "
        "{\"dense\": 10}], \"loss\": \"cross_entropy\"}",
        "{\"source\": \"sequence\", \"n\": 512, \"seed\": 0}", src, csv);
}
