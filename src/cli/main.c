/* main.c: the noether command: one executable, one subcommand per job (docs/interface.md). */
#include <errno.h>
#include <stdlib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"

static const char *running = "";   /* the subcommand, for the message below */

/* At exit: what was written to stdout must have arrived (a full disk, /dev/full, a closed
 * pipe are failures, exit 1 with a message, never a silent 0).  SIGPIPE is ignored so that a
 * closed pipe is such a failure (EPIPE) rather than a silent death by the signal. */
static void check_stdout(void)
{
    errno = 0;
    int bad = fflush(stdout) != 0 || ferror(stdout);
    int e = errno;
    if (fclose(stdout) != 0 && !bad) { bad = 1; e = errno; }
    if (!bad) return;
    fprintf(stderr, "noether%s%s: cannot write to standard output: %s\n", *running ? " " : "", running,
            e ? strerror(e) : "write error");
    _exit(NT_EFAIL);
}

static const struct {
    const char *name;
    int (*run)(int, char **);
    const char *what;
} commands[] = {
    {"demo", cmd_demo, "the main job on the built-in default (no files needed)"},
    {"run", cmd_run, "the main job: train, analyse at checkpoints, write the report"},
    {"info", cmd_info, "parameter count, parameter layout and data summary of a spec"},
    {"grad", cmd_grad, "loss and gradient at theta"},
    {"hvp", cmd_hvp, "exact Hessian-vector products (one vector or a block)"},
    {"hessian", cmd_hessian, "the dense d x d Hessian (small models)"},
    {"symmetries", cmd_symmetries, "the catalogue of transformations of the model"},
    {"train", cmd_train, "training with the ledger of every conserved or broken quantity"},
    {"spectrum", cmd_spectrum, "Hessian spectrum (both ends, density, trace) and its symmetry-aware views"},
    {"check", cmd_check, "the first- and second-order identities of every transformation"},
    {"discover", cmd_discover, "the conservation laws and symmetries the model really has, against the catalogue"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: noether COMMAND [ARGS]   (noether COMMAND --help for its options)\n"
               "       noether --help | --version\n\n"
               "Symmetry and equivariance of neural networks: exact gradients, Hessian-vector\n"
               "products and the identities that transformations of the parameters impose.\n\n"
               "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(f, "  %-11s %s\n", commands[i].name, commands[i].what);
    fprintf(f, "\nWithout SPEC, a command uses the built-in default (noether info shows it).\n\n"
               "exit status:\n"
               "  0         success\n"
               "  1         anything else that failed (a file that cannot be written, out of memory)\n"
               "  2         bad usage or bad input (one line on stderr naming the file, field or flag)\n"
               "  3         an identity that does not hold (noether check)\n"
               "  130, 143  a training run stopped by SIGINT, SIGTERM (continue it with --resume)\n\n"
               "environment:\n"
               "  OPENBLAS_NUM_THREADS  BLAS threads; 1 makes results and resumed runs bit for bit\n"
               "                        reproducible (OpenBLAS differs in the last bits otherwise)\n"
               "  OPENBLAS_CORETYPE     the BLAS kernel; unset, noether picks the best one this CPU\n"
               "                        supports when OpenBLAS does not know the CPU\n"
               "  NOETHER_THREADS       lanes: the samples split over this many threads, each with\n"
               "                        single-threaded BLAS (default: OpenBLAS's thread count)\n");
}

int main(int argc, char **argv)
{
    nt_blas_select(argv);   /* the right BLAS kernel for this CPU (src/util/blas.c) */
    signal(SIGPIPE, SIG_IGN);
    atexit(check_stdout);
    cli_parallel_start(&argc, &argv);   /* under mpirun: one rank of many (src/parallel/) */
    if (argc < 2) { usage(stderr); return NT_EINPUT; }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) { printf("noether %s\n", NT_VERSION); return 0; }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(argv[1], commands[i].name)) {
            running = commands[i].name;
            int rc = commands[i].run(argc - 1, argv + 1);
            nt_error err = {0};   /* under mpirun: a rank that failed at its end (rank 0's writes) stops all */
            if (nt_parallel_agree(NT_OK, &err)) cli_die(running, &err);
            return rc;
        }
    fprintf(stderr, "noether: unknown command '%s' (see noether --help)\n", argv[1]);
    return NT_EINPUT;
}
