/* _noether.c: the CPython bridge to libnoether (import noether; python/noether/__init__.py
 * is the public face).  A Problem holds a parsed spec (nt_spec_parse of the JSON that
 * noether.from_torch or noether.load builds), the caller's X and Y buffers wrapped as an
 * nt_dataset without copying, one engine sized once (reused by every call) and the
 * catalogue.  theta, V and the outputs cross as float64 C-contiguous buffers, read and
 * written in place: the Python side allocates the results (numpy.empty) and passes them in.
 * Every library failure raises noether.Error (a ValueError) with the library's one line. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#include <time.h>
#include "noether.h"
#include "bridge.h"

static PyObject *Error;   /* noether.Error */

static PyObject *fail(const nt_error *err)
{
    PyErr_SetString(Error, err->msg[0] ? err->msg : "noether: failed");
    return NULL;
}

/* A float64 C-contiguous buffer of exactly n doubles (writable when asked), or an Error
 * naming `what`. */
static int get_f64(PyObject *o, Py_buffer *b, int64_t n, int writable, const char *what)
{
    if (PyObject_GetBuffer(o, b, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0)) < 0) {
        PyErr_Clear();
        PyErr_Format(Error, "%s: not a %sC-contiguous float64 array", what, writable ? "writable " : "");
        return -1;
    }
    if (!b->format || strcmp(b->format, "d") || b->itemsize != 8) {
        PyBuffer_Release(b);
        PyErr_Format(Error, "%s: dtype must be float64", what);
        return -1;
    }
    if (n >= 0 && b->len != n * 8) {
        PyErr_Format(Error, "%s: %lld values, expected %lld", what, (long long)(b->len / 8), (long long)n);
        PyBuffer_Release(b);
        return -1;
    }
    return 0;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct {
    PyObject_HEAD
    int ready;
    nt_spec spec;
    Py_buffer xb, yb;
    nt_dataset ds;
    nt_engine *e;
    nt_transform *list;
    int n_list;
    int busy;   /* a call is running with the GIL released: the engine is in use */
} Problem;

static void problem_dealloc(Problem *p)
{
    if (p->ready) {
        nt_engine_free(p->e);
        nt_transforms_free(p->list, p->n_list);
        nt_spec_free(&p->spec);
        PyBuffer_Release(&p->xb);
        PyBuffer_Release(&p->yb);
    }
    Py_TYPE(p)->tp_free((PyObject *)p);
}

/* Problem(spec_json, path, X, Y): X (n, input) and Y (n, ydim) float64, borrowed for the
 * Problem's life (the caller must not change them in place). */
static int problem_init(Problem *p, PyObject *args, PyObject *kw)
{
    const char *json, *path;
    PyObject *X, *Y;
    if (p->ready) { PyErr_SetString(Error, "Problem: already initialized"); return -1; }
    if (!PyArg_ParseTuple(args, "ssOO", &json, &path, &X, &Y)) return -1;
    nt_error err = {0};
    if (nt_spec_parse(json, path, &p->spec, &err)) { fail(&err); return -1; }
    const nt_model *m = &p->spec.model;
    if (get_f64(X, &p->xb, -1, 0, "X")) { nt_spec_free(&p->spec); return -1; }
    if (get_f64(Y, &p->yb, -1, 0, "y")) { PyBuffer_Release(&p->xb); nt_spec_free(&p->spec); return -1; }
    const int ydim = m->loss == NT_LOSS_MSE ? m->output : 1;
    const int64_t n = (int64_t)(p->xb.len / 8) / (m->input > 0 ? m->input : 1);
    p->ds = (nt_dataset){.n = n, .dim = m->input, .ydim = ydim, .x = p->xb.buf, .y = p->yb.buf};
    int rc = NT_OK;
    if (n * m->input * 8 != p->xb.len)
        rc = nt_fail(&err, NT_EINPUT, "X: %lld values are not whole samples of %d features", (long long)(p->xb.len / 8),
                     m->input);
    else if (n * ydim * 8 != p->yb.len)
        rc = nt_fail(&err, NT_EINPUT, "y: %lld values for %lld samples, %s loss with %d outputs takes %d per sample",
                     (long long)(p->yb.len / 8), (long long)n, nt_loss_name(m->loss), m->output, ydim);
    if (!rc) rc = nt_dataset_check(m, &p->ds, &err);
    if (!rc) rc = nt_memory_fits(&err, 8.0 * (double)m->d * (3.0 + 2.0 * NTPY_BLOCK), 0, NULL,
                                 "model: d = %lld parameters in blocks of %d vectors", (long long)m->d, NTPY_BLOCK);
    if (!rc && !(p->e = nt_engine_new(m, n < NT_ENGINE_CHUNK ? n : NT_ENGINE_CHUNK, NTPY_BLOCK)))
        rc = nt_fail(&err, NT_EFAIL, "out of memory for the engine (d = %lld)", (long long)m->d);
    if (!rc) {
        nt_catalogue(m, &p->list, &p->n_list);
        rc = nt_transforms_load(&p->spec, &p->list, &p->n_list, &err);
    }
    if (rc) {
        nt_engine_free(p->e);
        nt_transforms_free(p->list, p->n_list);
        PyBuffer_Release(&p->xb);
        PyBuffer_Release(&p->yb);
        nt_spec_free(&p->spec);
        p->e = NULL, p->list = NULL, p->n_list = 0;
        fail(&err);
        return -1;
    }
    p->ready = 1;
    return 0;
}

static int ready(Problem *p)
{
    if (!p->ready) PyErr_SetString(Error, "Problem: not initialized");
    else if (p->busy) PyErr_SetString(Error, "Problem: in use by another thread (one call at a time per Problem)");
    return p->ready && !p->busy;
}

/* layout() -> (d, input, output, [(name, offset, shape), ...]) */
static PyObject *problem_layout(Problem *p, PyObject *unused)
{
    if (!ready(p)) return NULL;
    const nt_model *m = &p->spec.model;
    PyObject *t = PyList_New(m->n_tensors);
    for (int i = 0; t && i < m->n_tensors; i++) {
        const nt_tensor *T = &m->tensors[i];
        PyObject *shape = PyTuple_New(T->ndim);
        for (int j = 0; shape && j < T->ndim; j++) PyTuple_SET_ITEM(shape, j, PyLong_FromLongLong(T->shape[j]));
        PyList_SET_ITEM(t, i, Py_BuildValue("(sLN)", T->name, (long long)T->offset, shape));
    }
    return Py_BuildValue("(LiiiN)", (long long)m->d, m->input, m->output, (int)p->ds.n, t);
}

/* init_theta(out): the spec's seeded initialization */
static PyObject *problem_init_theta(Problem *p, PyObject *args)
{
    PyObject *o;
    Py_buffer b;
    if (!ready(p) || !PyArg_ParseTuple(args, "O", &o) || get_f64(o, &b, p->spec.model.d, 1, "theta")) return NULL;
    nt_error err = {0};
    int rc = nt_spec_theta(&p->spec, p->list, p->n_list, b.buf, &err);
    PyBuffer_Release(&b);
    if (rc) return fail(&err);
    Py_RETURN_NONE;
}

/* loss(theta) -> L_gamma */
static PyObject *problem_loss(Problem *p, PyObject *args)
{
    PyObject *o;
    Py_buffer th;
    if (!ready(p) || !PyArg_ParseTuple(args, "O", &o) || get_f64(o, &th, p->spec.model.d, 0, "theta")) return NULL;
    nt_error err = {0};
    double loss = 0;
    int rc;
    p->busy = 1;
    Py_BEGIN_ALLOW_THREADS
    rc = ntpy_loss(p->e, th.buf, &p->ds, &loss, &err);
    Py_END_ALLOW_THREADS
    p->busy = 0;
    PyBuffer_Release(&th);
    if (rc) return fail(&err);
    return PyFloat_FromDouble(loss);
}

/* grad(theta, g) -> L_gamma; g filled */
static PyObject *problem_grad(Problem *p, PyObject *args)
{
    PyObject *o, *go;
    Py_buffer th, g;
    const int64_t d = p->spec.model.d;
    if (!ready(p) || !PyArg_ParseTuple(args, "OO", &o, &go) || get_f64(o, &th, d, 0, "theta")) return NULL;
    if (get_f64(go, &g, d, 1, "gradient")) { PyBuffer_Release(&th); return NULL; }
    nt_error err = {0};
    double loss = 0;
    int rc;
    p->busy = 1;
    Py_BEGIN_ALLOW_THREADS
    rc = ntpy_grad(p->e, th.buf, &p->ds, &loss, g.buf, &err);
    Py_END_ALLOW_THREADS
    p->busy = 0;
    PyBuffer_Release(&th);
    PyBuffer_Release(&g);
    if (rc) return fail(&err);
    return PyFloat_FromDouble(loss);
}

/* hvp(theta, V, HV): V and HV k x d (k >= 1), HV filled */
static PyObject *problem_hvp(Problem *p, PyObject *args)
{
    PyObject *o, *vo, *ho;
    Py_buffer th, V, HV;
    const int64_t d = p->spec.model.d;
    if (!ready(p) || !PyArg_ParseTuple(args, "OOO", &o, &vo, &ho) || get_f64(o, &th, d, 0, "theta")) return NULL;
    if (get_f64(vo, &V, -1, 0, "V")) { PyBuffer_Release(&th); return NULL; }
    const int64_t k = (int64_t)(V.len / 8) / (d > 0 ? d : 1);
    if (k < 1 || k * d * 8 != V.len || k > 1 << 30) {
        PyErr_Format(Error, "V: %lld values are not k >= 1 vectors of d = %lld", (long long)(V.len / 8), (long long)d);
        PyBuffer_Release(&th);
        PyBuffer_Release(&V);
        return NULL;
    }
    if (get_f64(ho, &HV, k * d, 1, "HV")) { PyBuffer_Release(&th); PyBuffer_Release(&V); return NULL; }
    nt_error err = {0};
    int rc;
    p->busy = 1;
    Py_BEGIN_ALLOW_THREADS
    rc = ntpy_hvp(p->e, th.buf, &p->ds, (int)k, V.buf, HV.buf, &err);
    Py_END_ALLOW_THREADS
    p->busy = 0;
    PyBuffer_Release(&th);
    PyBuffer_Release(&V);
    PyBuffer_Release(&HV);
    if (rc) return fail(&err);
    Py_RETURN_NONE;
}

/* hvp_seconds(theta, V, HV, reps) -> [seconds of each of reps calls of the library's product,
 * timed in C]: the reference against which the bench measures the per-call cost of p.hvp */
static PyObject *problem_hvp_seconds(Problem *p, PyObject *args)
{
    PyObject *o, *vo, *ho;
    int reps;
    Py_buffer th, V, HV;
    const int64_t d = p->spec.model.d;
    if (!ready(p) || !PyArg_ParseTuple(args, "OOOi", &o, &vo, &ho, &reps) || get_f64(o, &th, d, 0, "theta")) return NULL;
    if (get_f64(vo, &V, d, 0, "V")) { PyBuffer_Release(&th); return NULL; }
    if (get_f64(ho, &HV, d, 1, "HV")) { PyBuffer_Release(&th); PyBuffer_Release(&V); return NULL; }
    PyObject *l = PyList_New(0);
    nt_error err = {0};
    int rc = NT_OK;
    for (int r = 0; l && !rc && r < reps; r++) {
        double t0 = now();
        rc = ntpy_hvp(p->e, th.buf, &p->ds, 1, V.buf, HV.buf, &err);
        PyObject *t = PyFloat_FromDouble(now() - t0);
        if (!t || PyList_Append(l, t)) rc = nt_fail(&err, NT_EFAIL, "out of memory");
        Py_XDECREF(t);
    }
    PyBuffer_Release(&th);
    PyBuffer_Release(&V);
    PyBuffer_Release(&HV);
    if (rc) { Py_XDECREF(l); return fail(&err); }
    return l;
}

/* hessian_fits() -> None, or an Error naming the bytes (as noether hessian: half the memory) */
static PyObject *problem_hessian_fits(Problem *p, PyObject *unused)
{
    if (!ready(p)) return NULL;
    const int64_t d = p->spec.model.d;
    nt_error err = {0};
    if (nt_memory_fits(&err, 8.0 * (double)d * (double)d, nt_memory_bytes() / 2,
                       "allowed (half the machine's memory); use hvp for products",
                       "the dense Hessian of d = %lld parameters", (long long)d))
        return fail(&err);
    Py_RETURN_NONE;
}

/* hessian(theta, H): H d x d filled */
static PyObject *problem_hessian(Problem *p, PyObject *args)
{
    PyObject *o, *ho;
    Py_buffer th, H;
    const int64_t d = p->spec.model.d;
    if (!ready(p) || !PyArg_ParseTuple(args, "OO", &o, &ho) || get_f64(o, &th, d, 0, "theta")) return NULL;
    if (get_f64(ho, &H, d * d, 1, "H")) { PyBuffer_Release(&th); return NULL; }
    nt_error err = {0};
    int rc;
    p->busy = 1;
    Py_BEGIN_ALLOW_THREADS
    rc = ntpy_hessian(p->e, th.buf, &p->ds, H.buf, &err);
    Py_END_ALLOW_THREADS
    p->busy = 0;
    PyBuffer_Release(&th);
    PyBuffer_Release(&H);
    if (rc) return fail(&err);
    Py_RETURN_NONE;
}

/* symmetries() -> ([(name, discrete, equivariance, generators)], conserved listed, independent or -1) */
static PyObject *problem_symmetries(Problem *p, PyObject *unused)
{
    if (!ready(p)) return NULL;
    int listed = 0;
    const int independent = nt_catalogue_independent(&p->spec.model, p->list, p->n_list, NULL, 1e-10, &listed);
    PyObject *l = PyList_New(p->n_list);
    for (int i = 0; l && i < p->n_list; i++) {
        const nt_transform *t = &p->list[i];
        PyList_SET_ITEM(l, i, Py_BuildValue("(siii)", t->name, t->discrete, t->equivariance, t->generators));
    }
    return Py_BuildValue("(Nii)", l, listed, independent);
}

/* check(theta, tol) -> (loss, |g|, seconds, seconds in gradients,
 *                       [(name, entry, first, second, s1, s2, fixed_g, fixed_h, holds)]) */
static PyObject *problem_check(Problem *p, PyObject *args)
{
    PyObject *o;
    Py_buffer th;
    double tol;
    const nt_model *m = &p->spec.model;
    if (!ready(p) || !PyArg_ParseTuple(args, "Od", &o, &tol) || get_f64(o, &th, m->d, 0, "theta")) return NULL;
    nt_error err = {0};
    const int count = nt_check_count(p->list, p->n_list);
    nt_check_result *res = malloc(sizeof *res * (size_t)(count > 0 ? count : 1));
    double *g = malloc(sizeof(double) * (size_t)(m->d > 0 ? m->d : 1));
    double loss = 0, t_grad = 0, t_check = 0;
    int rc = !res || !g ? nt_fail(&err, NT_EFAIL, "out of memory for the identities (d = %lld)", (long long)m->d) : NT_OK;
    p->busy = 1;
    Py_BEGIN_ALLOW_THREADS
    if (!rc) rc = ntpy_grad(p->e, th.buf, &p->ds, &loss, g, &err);   /* a warm-up, then one timed (as noether check) */
    double t0 = now();
    if (!rc) rc = ntpy_grad(p->e, th.buf, &p->ds, &loss, g, &err);
    t_grad = now() - t0;
    t0 = now();
    if (!rc) rc = ntpy_check(p->e, m, &p->ds, th.buf, p->list, p->n_list, tol, res, &err);
    t_check = now() - t0;
    Py_END_ALLOW_THREADS
    p->busy = 0;
    PyBuffer_Release(&th);
    PyObject *l = rc ? NULL : PyList_New(count);
    for (int i = 0; l && i < count; i++) {
        const nt_check_result *r = &res[i];
        PyList_SET_ITEM(l, i, Py_BuildValue("(siddddddi)", r->name, r->entry, r->first_order, r->second_order, r->s1,
                                            r->s2, r->fixed_gradient, r->fixed_hessian, r->holds));
    }
    const double gnorm = rc ? 0 : nt_norm2(m->d, g);
    free(res);
    free(g);
    if (rc) return fail(&err);
    return Py_BuildValue("(ddddN)", loss, gnorm, t_check, t_grad > 0 ? t_check / t_grad : 0.0, l);
}

static PyMethodDef problem_methods[] = {
    {"layout", (PyCFunction)problem_layout, METH_NOARGS, "(d, input, output, n, [(name, offset, shape)])"},
    {"init_theta", (PyCFunction)problem_init_theta, METH_VARARGS, "the spec's seeded theta into out"},
    {"loss", (PyCFunction)problem_loss, METH_VARARGS, "L_gamma(theta)"},
    {"grad", (PyCFunction)problem_grad, METH_VARARGS, "L_gamma; the gradient into g"},
    {"hvp", (PyCFunction)problem_hvp, METH_VARARGS, "H_gamma V into HV (k x d)"},
    {"hvp_seconds", (PyCFunction)problem_hvp_seconds, METH_VARARGS, "seconds of each library product (bench)"},
    {"hessian_fits", (PyCFunction)problem_hessian_fits, METH_NOARGS, "Error when the dense Hessian is too large"},
    {"hessian", (PyCFunction)problem_hessian, METH_VARARGS, "the dense Hessian into H (d x d)"},
    {"symmetries", (PyCFunction)problem_symmetries, METH_NOARGS, "the catalogue"},
    {"check", (PyCFunction)problem_check, METH_VARARGS, "every identity at theta"},
    {"spectrum", (PyCFunction)ntpy_spectrum, METH_VARARGS, "noether spectrum's JSON document"},
    {"train", (PyCFunction)ntpy_train, METH_VARARGS, "nt_train with the ledger"},
    {NULL, NULL, 0, NULL}};

static PyTypeObject ProblemType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "noether._noether.Problem",
    .tp_basicsize = sizeof(Problem),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)problem_init,
    .tp_dealloc = (destructor)problem_dealloc,
    .tp_methods = problem_methods,
    .tp_doc = "Problem(spec_json, path, X, Y): a parsed spec, its data (borrowed) and one engine",
};

/* the parts of a Problem that bridge_*.c need */
const nt_spec *ntpy_spec(PyObject *o) { return &((Problem *)o)->spec; }
const nt_dataset *ntpy_data(PyObject *o) { return &((Problem *)o)->ds; }
nt_engine *ntpy_engine(PyObject *o) { return ((Problem *)o)->e; }
const nt_transform *ntpy_list(PyObject *o, int *n) { *n = ((Problem *)o)->n_list; return ((Problem *)o)->list; }
int ntpy_ready(PyObject *o) { return ready((Problem *)o); }
void ntpy_busy(PyObject *o, int busy) { ((Problem *)o)->busy = busy; }
PyObject *ntpy_fail(const nt_error *err) { return fail(err); }
int ntpy_get_f64(PyObject *o, Py_buffer *b, int64_t n, int writable, const char *what)
{
    return get_f64(o, b, n, writable, what);
}

/* load_data(spec_path) -> (spec text, X bytes, Y bytes, n, dim, ydim): the spec's training
 * set as the library loads it (nt_data_load: standardization, split, labels as targets) */
static PyObject *load_data(PyObject *mod, PyObject *args)
{
    const char *path;
    if (!PyArg_ParseTuple(args, "s", &path)) return NULL;
    nt_error err = {0};
    nt_spec spec;
    nt_data data;
    if (nt_spec_load(path, &spec, &err)) return fail(&err);
    if (nt_data_load(&spec, &data, &err)) { nt_spec_free(&spec); return fail(&err); }
    const nt_dataset *t = &data.train;
    PyObject *r = Py_BuildValue("(y#y#Lii)", (const char *)t->x, (Py_ssize_t)(8 * t->n * t->dim), (const char *)t->y,
                                (Py_ssize_t)(8 * t->n * t->ydim), (long long)t->n, t->dim, t->ydim);
    nt_data_free(&data);
    nt_spec_free(&spec);
    return r;
}

static PyMethodDef module_methods[] = {
    {"load_data", load_data, METH_VARARGS, "the training set of a spec file"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, .m_name = "_noether", .m_doc = "libnoether from Python",
                                    .m_size = -1, .m_methods = module_methods};

PyMODINIT_FUNC PyInit__noether(void)
{
    if (PyType_Ready(&ProblemType) < 0) return NULL;
    nt_blas_quiet();   /* OpenBLAS's idle threads off the lanes' cores soon after a call */
    PyObject *mod = PyModule_Create(&module);
    if (!mod) return NULL;
    Error = PyErr_NewExceptionWithDoc("noether.Error", "a failure of libnoether: its one-line message",
                                      PyExc_ValueError, NULL);
    Py_INCREF(Error);
    Py_INCREF(&ProblemType);
    if (PyModule_AddObject(mod, "Error", Error) < 0 || PyModule_AddObject(mod, "Problem", (PyObject *)&ProblemType) < 0) {
        Py_DECREF(mod);
        return NULL;
    }
    PyModule_AddStringConstant(mod, "version", NT_VERSION);
    PyModule_AddIntConstant(mod, "engine_chunk", NT_ENGINE_CHUNK);
    return mod;
}
