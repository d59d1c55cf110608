/* bridge.h: what the files of the CPython bridge share (_noether.c holds the Problem type;
 * bridge_engine.c the engine's calls, kept in one place; bridge_run.c spectrum and train). */
#ifndef NTPY_BRIDGE_H
#define NTPY_BRIDGE_H
#include <Python.h>
#include "noether.h"

/* the tangents an engine carries at once (a block of products is one sweep) */
#define NTPY_BLOCK 16

/* The engine's calls with the library's status convention (NT_OK or err filled). */
int ntpy_loss(nt_engine *e, const double *theta, const nt_dataset *ds, double *loss, nt_error *err);
int ntpy_grad(nt_engine *e, const double *theta, const nt_dataset *ds, double *loss, double *g, nt_error *err);
int ntpy_hvp(nt_engine *e, const double *theta, const nt_dataset *ds, int k, const double *V, double *HV,
             nt_error *err);
int ntpy_hessian(nt_engine *e, const double *theta, const nt_dataset *ds, double *H, nt_error *err);
int ntpy_check(nt_engine *e, const nt_model *m, const nt_dataset *ds, const double *theta, const nt_transform *list,
               int n, double tol, nt_check_result *res, nt_error *err);

/* A Problem's parts (o must be a Problem; ntpy_ready sets the Python error when it is not). */
int ntpy_ready(PyObject *o);   /* also refuses a Problem busy in another thread */
void ntpy_busy(PyObject *o, int busy);   /* set around a release of the GIL */
const nt_spec *ntpy_spec(PyObject *o);
const nt_dataset *ntpy_data(PyObject *o);
nt_engine *ntpy_engine(PyObject *o);
const nt_transform *ntpy_list(PyObject *o, int *n);
PyObject *ntpy_fail(const nt_error *err);
int ntpy_get_f64(PyObject *o, Py_buffer *b, int64_t n, int writable, const char *what);

/* Problem.spectrum(theta, top, bottom, method, density, trace, sectors) -> JSON text */
PyObject *ntpy_spectrum(PyObject *self, PyObject *args);
/* Problem.train(spec_json, theta) -> (rows, quantities, stopped message or None) */
PyObject *ntpy_train(PyObject *self, PyObject *args);
#endif
