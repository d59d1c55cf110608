/* bridge_run.c: Problem.spectrum and Problem.train of the CPython bridge: the library's
 * nt_spectrum_analyse with its JSON document (nt_spectrum_json, the text noether spectrum
 * --json prints), and nt_train with the ledger (docs/theory.md (F3)) on the Problem's data. */
#include <string.h>
#include "bridge.h"

/* spectrum(theta, top, bottom, method, density, trace, sectors) -> the JSON text */
PyObject *ntpy_spectrum(PyObject *self, PyObject *args)
{
    PyObject *o;
    Py_buffer th;
    int top, bottom, density, trace, sectors;
    const char *method;
    if (!ntpy_ready(self) || !PyArg_ParseTuple(args, "Oiisppp", &o, &top, &bottom, &method, &density, &trace, &sectors))
        return NULL;
    const nt_model *m = &ntpy_spec(self)->model;
    nt_error err = {0};
    nt_spectrum_method how = !strcmp(method, "dense") ? NT_METHOD_DENSE
                           : !strcmp(method, "lanczos") ? NT_METHOD_LANCZOS : NT_METHOD_AUTO;
    if (how == NT_METHOD_AUTO && strcmp(method, "auto"))
        return nt_fail(&err, NT_EINPUT, "method: '%s' is not dense, lanczos or auto", method), ntpy_fail(&err);
    if (top < 0 || bottom < 0)
        return nt_fail(&err, NT_EINPUT, "top, bottom: %d, %d (must be >= 0)", top, bottom), ntpy_fail(&err);
    if (ntpy_get_f64(o, &th, m->d, 0, "theta")) return NULL;
    int n_list;
    const nt_transform *list = ntpy_list(self, &n_list);
    nt_spectrum_opts so = {.top = top, .bottom = bottom, .method = how, .trace = trace, .density = density,
                           .sectors = sectors};
    nt_spectrum r;
    int rc;
    ntpy_busy(self, 1);
    Py_BEGIN_ALLOW_THREADS
    rc = nt_spectrum_analyse(ntpy_engine(self), m, ntpy_data(self), list, n_list, th.buf, &so, &r, &err);
    Py_END_ALLOW_THREADS
    ntpy_busy(self, 0);
    PyBuffer_Release(&th);
    if (rc) return ntpy_fail(&err);
    nt_spectrum_doc_opts d = {.trace = trace, .density = density, .sectors = sectors, .all_values = 1};
    char *text = nt_spectrum_json(&r, &d);
    nt_spectrum_free(&r);
    if (!text) return PyErr_NoMemory();
    PyObject *s = PyUnicode_FromString(text);
    free(text);
    return s;
}

typedef struct {
    PyObject *rows;    /* per logged step: (step, loss, loss_gamma, accuracy, test_loss, test_accuracy, norm2,
                          margin, seconds) */
    PyObject *ledger;  /* per logged step: a tuple of (measured, predicted, gradient_flow) per quantity */
    int failed;
} train_log;

static void on_log(void *ctx, const nt_train_log *L, const double *theta, const nt_quantity *q, int nq)
{
    train_log *t = ctx;
    if (t->failed) return;
    PyObject *row = Py_BuildValue("(Ldddddddd)", (long long)L->step, L->loss, L->loss_gamma, L->accuracy, L->test_loss,
                                  L->test_accuracy, L->norm2, L->margin, L->seconds);
    PyObject *led = PyTuple_New(nq);
    for (int j = 0; led && j < nq; j++)
        PyTuple_SET_ITEM(led, j, Py_BuildValue("(ddd)", q[j].measured, q[j].predicted, q[j].gradient_flow));
    if (!row || !led || PyList_Append(t->rows, row) || PyList_Append(t->ledger, led)) t->failed = 1;
    Py_XDECREF(row);
    Py_XDECREF(led);
}

/* train(spec_json, path, theta) -> (rows, ledger rows, quantities, conserved listed, independent,
 * stopped message or None, optimizer, lr); theta (writable) trained in place.  spec_json is the Problem's
 * model with the train keys of this run; the data are the Problem's. */
PyObject *ntpy_train(PyObject *self, PyObject *args)
{
    const char *json, *path;
    PyObject *o;
    Py_buffer th;
    if (!ntpy_ready(self) || !PyArg_ParseTuple(args, "ssO", &json, &path, &o)) return NULL;
    nt_error err = {0};
    nt_spec spec;
    if (nt_spec_parse(json, path, &spec, &err)) return ntpy_fail(&err);
    if (spec.model.d != ntpy_spec(self)->model.d) {
        nt_spec_free(&spec);
        return nt_fail(&err, NT_EINPUT, "%s: model of d = %lld, the problem's has %lld", path, (long long)spec.model.d,
                       (long long)ntpy_spec(self)->model.d), ntpy_fail(&err);
    }
    if (ntpy_get_f64(o, &th, spec.model.d, 1, "theta")) { nt_spec_free(&spec); return NULL; }
    int n_list, nq = 0, listed = 0;
    const nt_transform *list = ntpy_list(self, &n_list);
    nt_quantity *q = NULL;
    nt_ledger_quantities(&spec.model, list, n_list, &q, &nq);
    const int independent = nt_catalogue_independent(&spec.model, list, n_list, NULL, 1e-10, &listed);
    nt_data data = {.train = *ntpy_data(self)};
    train_log t = {PyList_New(0), PyList_New(0), 0};
    int rc = t.rows && t.ledger ? nt_train(&spec, &data, list, n_list, th.buf, q, nq, on_log, &t, &err)
                                : nt_fail(&err, NT_EFAIL, "out of memory for the ledger rows");
    PyBuffer_Release(&th);
    static const char *names[] = {"gd", "sgd", "momentum", "adam"};
    const char *optimizer = names[spec.train.optimizer];
    const double lr = spec.train.lr;
    PyObject *quant = PyList_New(nq);
    for (int j = 0; quant && j < nq; j++)
        PyList_SET_ITEM(quant, j, Py_BuildValue("(sidddddddddd)", q[j].name, q[j].equivariance, q[j].initial,
                                                q[j].measured, q[j].predicted, q[j].gradient_flow, q[j].max_gap,
                                                q[j].first, q[j].decay, q[j].second, q[j].size, q[j].flow_source));
    free(q);
    nt_spec_free(&spec);
    if (t.failed || !quant) {
        Py_XDECREF(t.rows), Py_XDECREF(t.ledger), Py_XDECREF(quant);
        return PyErr_Occurred() ? NULL : PyErr_NoMemory();
    }
    /* a diverged run (non-finite loss) is reported, not raised: its rows up to there are the result */
    PyObject *stopped = rc ? PyUnicode_FromString(err.msg) : (Py_INCREF(Py_None), Py_None);
    return Py_BuildValue("(NNNiiNsd)", t.rows, t.ledger, quant, listed, independent, stopped, optimizer, lr);
}
