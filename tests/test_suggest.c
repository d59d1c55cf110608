/* test_suggest.c: the spec reader's errors suggest the fix (src/spec/suggest.c, the keys of
 * src/model/registry.h), through the noether binary: an unknown key (of a layer: its
 * registry's keys and PyTorch's names for them; of a section: its keys) or a misspelt
 * value gets "did you mean" with the nearest name, a PyTorch name its noether name
 * ("linear" -> dense, "bce" -> logistic with one output), dropout a refusal saying why; each
 * message names the file and the field, exits 2; a far-off name gets no suggestion (the
 * negative controls). */
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include "helpers.h"

/* noether info on a spec whose model has these layers and this loss: exit code, stderr */
static int info_on(const char *layers, const char *loss, const char *data_extra, char **err)
{
    char dir[256], spec[NT_PATH_MAX], text[2048], args[NT_PATH_MAX + 16];
    tmpdir_new(dir);
    path_join(spec, dir, "spec.json");
    snprintf(text, sizeof text, "{\"model\": {\"input\": 3, \"layers\": %s, \"loss\": \"%s\"}, "
             "\"data\": {\"source\": \"teacher\"%s}}", layers, loss, data_extra);
    write_text(spec, text);
    snprintf(args, sizeof args, "info %s", spec);
    return run_noether(args, NULL, err);
}

typedef struct {
    const char *layers, *loss, *data;
    const char *field;     /* the key path the message names */
    const char *says;      /* what it says, the suggestion included; NULL: nothing more */
    int suggests;          /* 1: "did you mean" expected; 0: must be absent */
} bad_spec;

static void expect_message(const bad_spec *b)
{
    char *err = NULL;
    cr_expect_eq(info_on(b->layers, b->loss, b->data, &err), 2, "%s: exit code", b->layers);
    cr_assert_not_null(err);
    cr_expect(strstr(err, "spec.json: "), "the message names the file: %s", err);
    cr_expect(strstr(err, b->field), "the message names %s: %s", b->field, err);
    if (b->says) cr_expect(strstr(err, b->says), "expected '%s' in: %s", b->says, err);
    cr_expect_eq(strstr(err, "did you mean") != NULL, b->suggests, "'did you mean' %s in: %s",
                 b->suggests ? "expected" : "not expected", err);
    free(err);
}

Test(suggest, unknown_layer_keys_suggest_the_nearest)
{
    const bad_spec cases[] = {
        {"[{\"linear\": 4}, {\"dense\": 1}]", "mse", "", "model.layers[0].linear", "unknown key (did you mean 'dense'?)", 1},
        {"[{\"dense\": 4, \"bais\": false}, {\"dense\": 1}]", "mse", "", "model.layers[0].bais",
         "unknown key (did you mean 'bias'?)", 1},
        {"[{\"dense\": 4}, {\"atc\": \"relu\"}, {\"dense\": 1}]", "mse", "", "model.layers[1].atc",
         "(did you mean 'act'?)", 1},
        {"[{\"Conv2d\": 4, \"kernel\": 3}, {\"dense\": 1}]", "mse", "", "model.layers[0].Conv2d", "(did you mean 'conv'?)", 1},
        {"[{\"dense\": 1}]", "mse", ", \"standardise\": true", "data.standardise",
         "unknown key (did you mean 'standardize'?)", 1},
        /* controls: a made-up key is unknown, with no suggestion */
        {"[{\"dense\": 4, \"qqqqzzzz\": 1}, {\"dense\": 1}]", "mse", "", "model.layers[0].qqqqzzzz", "unknown key", 0},
        {"[{\"xyz\": 4}, {\"dense\": 1}]", "mse", "", "model.layers[0].xyz", "unknown key", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) expect_message(&cases[i]);
}

Test(suggest, misspelt_values_suggest_the_nearest)
{
    const bad_spec cases[] = {
        {"[{\"dense\": 4}, {\"act\": \"rleu\"}, {\"dense\": 1}]", "mse", "", "model.layers[1].act",
         "'rleu' is not one of identity, relu", 1},
        {"[{\"dense\": 4}, {\"act\": \"tahn\"}, {\"dense\": 1}]", "mse", "", "model.layers[1].act", "(did you mean 'tanh'?)", 1},
        {"[{\"dense\": 2}]", "cross_entropi", "", "model.loss", "(did you mean 'cross_entropy'?)", 1},
        {"[{\"dense\": 1}]", "mse", ", \"activation\": \"sigmiod\"", "data.activation", "(did you mean 'sigmoid'?)", 1},
        {"[{\"dense\": 4}, {\"norm\": \"layr\"}, {\"dense\": 1}]", "mse", "", "model.layers[1].norm",
         "(did you mean 'layer'?)", 1},
        /* controls: far from every name */
        {"[{\"dense\": 4}, {\"act\": \"swish\"}, {\"dense\": 1}]", "mse", "", "model.layers[1].act",
         "'swish' is not one of", 0},
        {"[{\"dense\": 2}]", "hinge_squared", "", "model.loss", "'hinge_squared' is not one of", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) expect_message(&cases[i]);
}

/* PyTorch's names: bce is the logistic loss with one output; dropout is refused with the reason */
Test(suggest, bce_and_dropout_say_what_to_do)
{
    const bad_spec cases[] = {
        {"[{\"dense\": 1}]", "bce", "", "model.loss", "(did you mean 'logistic' with one output", 1},
        {"[{\"dense\": 1}]", "BCEWithLogitsLoss", "", "model.loss", "(did you mean 'logistic' with one output", 1},
        {"[{\"dense\": 4}, {\"dropout\": 0.5}, {\"dense\": 1}]", "mse", "", "model.layers[1].dropout",
         "dropout is not supported: it makes the loss random, and the Hessian of a random loss is not defined", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) expect_message(&cases[i]);
    /* control: logistic itself with one output is accepted */
    char *err = NULL;
    cr_expect_eq(info_on("[{\"dense\": 1}]", "logistic", "", &err), 0, "logistic refused: %s", err);
    free(err);
}
