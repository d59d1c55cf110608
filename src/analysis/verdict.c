/* verdict.c: every pass/fail verdict of a run, decided once from plain numbers (see
 * nt_verdicts_decide in noether.h).  Each threshold is a named constant and each "not
 * applicable" rule is written here only: the report's "At a glance" table, the closing lines
 * of noether run, summary.json's all_identities_hold and the exit code read these verdicts
 * and decide nothing themselves.  What the numbers must look like is docs/theory.md §6. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "noether.h"

const char *nt_verdict_name(nt_verdict v)
{
    switch (v) {
    case NT_VERDICT_HOLDS: return "holds";
    case NT_VERDICT_FAILS: return "fails";
    case NT_VERDICT_NOT_APPLICABLE: return "not applicable";
    case NT_VERDICT_NONE: return "none";
    case NT_VERDICT_ABSENT: return "absent";
    }
    return "unknown";
}

void nt_verdicts_free(nt_verdicts *v)
{
    if (!v) return;
    free(v->block);
    free(v->sector);
    memset(v, 0, sizeof *v);
}

static nt_verdict holds(int ok) { return ok ? NT_VERDICT_HOLDS : NT_VERDICT_FAILS; }

/* the identities (§6): each identity holds when its residual is at most NT_IDENTITY_TOL
 * (nt_check decides that); the run's verdict holds when every identity held at every
 * checkpoint.  Nothing to check without identities. */
static nt_verdict identities(const nt_run_facts *f)
{
    if (f->identities == 0) return NT_VERDICT_NOT_APPLICABLE;
    int all = 1;
    for (int k = 0; k < f->checkpoints; k++) all &= f->identities_holding[k] == f->identities;
    return holds(all);
}

/* (F3) summed step by step must equal the measured Q to round-off relative to the size of
 * Q's terms (§6): a gap below NT_LEDGER_TOL; a NAN gap fails.  Nothing to check without
 * quantities (no continuous symmetry with a symmetric generator). */
static nt_verdict ledger(const nt_run_facts *f)
{
    if (f->quantities == 0) return NT_VERDICT_NOT_APPLICABLE;
    return holds(f->ledger_max_gap < NT_LEDGER_TOL);
}

/* (S1gamma): every pure shift c (A = 0) has H_gamma c = gamma c at every theta, so the
 * spectrum holds at least the shifts' rank of eigenvalues at gamma (counted within the
 * spectrum's found tolerance). */
static nt_verdict flat(const nt_run_facts *f)
{
    if (f->flat_found < 0) return NT_VERDICT_ABSENT;
    return holds(f->flat_found >= f->flat_predicted);
}

/* §3, a k-homogeneous model: theta^T H_gamma theta / |theta|^2 equals its closed form to
 * round-off: |r - c| <= NT_CLOSED_FORM_TOL (|r| + |c|). */
static nt_verdict sharp(const nt_run_facts *f)
{
    if (!f->sharp) return NT_VERDICT_ABSENT;
    const double r = f->radial_curvature, c = f->radial_closed_form;
    return holds(fabs(r - c) <= NT_CLOSED_FORM_TOL * (fabs(r) + fabs(c) + 1e-300));
}

/* §3, a scale-invariant block S: P_S g_gamma = -(H_gamma - 2 gamma) P_S theta (S1gamma) puts the
 * fraction p of the block's |g|^2 in the top-k eigenspace; measured a within
 * NT_CLOSED_FORM_TOL |p|. */
static nt_verdict block(double a, double p)
{
    return holds(fabs(a - p) <= NT_CLOSED_FORM_TOL * (fabs(p) + 1e-300));
}

/* §4: at the S_n-symmetric point the breaking eigenvalues of n interchangeable units come in
 * groups of multiplicity n - 1. */
static nt_verdict sector(int found, int predicted)
{
    if (found < 0) return NT_VERDICT_ABSENT;
    return holds(found == predicted);
}

/* §2 (the homogeneous case), Lyu & Li: once a k-homogeneous model separates the data under a
 * margin loss, gradient descent increases |theta|^2 and the normalized margin at every step
 * (for a small enough learning rate): neither may fall at a logged row after separation. */
static nt_verdict margin(const nt_margin_growth *g)
{
    if (!g) return NT_VERDICT_ABSENT;
    if (!g->separated || g->rows_separated < 2) return NT_VERDICT_NOT_APPLICABLE;   /* nothing after separation */
    return holds(g->margin_falls == 0 && g->norm2_falls == 0);
}

int nt_verdicts_decide(const nt_run_facts *f, nt_verdicts *v, nt_error *err)
{
    memset(v, 0, sizeof *v);
    if (!f) return nt_fail(err, NT_EINPUT, "verdicts: no facts");
    if (f->identities < 0) return nt_fail(err, NT_EINPUT, "verdicts: identities: %d is negative", f->identities);
    if (f->checkpoints < 0) return nt_fail(err, NT_EINPUT, "verdicts: checkpoints: %d is negative", f->checkpoints);
    if (f->checkpoints > 0 && !f->identities_holding)
        return nt_fail(err, NT_EINPUT, "verdicts: identities_holding: missing for %d checkpoints", f->checkpoints);
    for (int k = 0; k < f->checkpoints; k++)
        if (f->identities_holding[k] < 0 || f->identities_holding[k] > f->identities)
            return nt_fail(err, NT_EINPUT, "verdicts: identities_holding[%d]: %d is outside 0..%d", k,
                           f->identities_holding[k], f->identities);
    if (f->quantities < 0) return nt_fail(err, NT_EINPUT, "verdicts: quantities: %d is negative", f->quantities);
    if (f->flat_found >= 0 && f->flat_predicted < 0)
        return nt_fail(err, NT_EINPUT, "verdicts: flat_predicted: %d is negative", f->flat_predicted);
    if (f->blocks < 0 || (f->blocks > 0 && (!f->block_measured || !f->block_predicted)))
        return nt_fail(err, NT_EINPUT, "verdicts: blocks: %d blocks without their fractions", f->blocks);
    if (f->sectors < 0 || (f->sectors > 0 && (!f->sector_found || !f->sector_predicted)))
        return nt_fail(err, NT_EINPUT, "verdicts: sectors: %d sectors without their multiplicities", f->sectors);
    v->block = malloc(sizeof(nt_verdict) * (size_t)(f->blocks + 1));
    v->sector = malloc(sizeof(nt_verdict) * (size_t)(f->sectors + 1));
    if (!v->block || !v->sector) {
        nt_verdicts_free(v);
        return nt_fail(err, NT_EFAIL, "verdicts: out of memory");
    }
    v->identities = identities(f);
    v->ledger = ledger(f);
    v->training = f->stopped ? NT_VERDICT_FAILS : NT_VERDICT_NONE;
    v->flat = flat(f);
    v->sharp = sharp(f);
    v->margin = margin(f->margin);
    v->laws = !f->discovery ? NT_VERDICT_ABSENT : holds(f->discovery->explained);
    v->blocks = f->blocks;
    for (int i = 0; i < f->blocks; i++) v->block[i] = block(f->block_measured[i], f->block_predicted[i]);
    v->sectors = f->sectors;
    for (int i = 0; i < f->sectors; i++) v->sector[i] = sector(f->sector_found[i], f->sector_predicted[i]);
    return NT_OK;
}
