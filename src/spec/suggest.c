/* suggest.c: "did you mean" for the spec reader.  A misspelt name is near the one meant in
 * edit distance (insertions, deletions, substitutions, swaps of neighbours, each one edit); a name at
 * most max(1, |s| / 3) edits from a known one is offered, a farther one is not (a made-up
 * word gets the list of names only). */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include "spec_internal.h"

#define SUGGEST_MAX 64   /* longer names are not compared */

static int same(char x, char y)
{
    return tolower((unsigned char)x) == tolower((unsigned char)y);
}

/* the edit distance between a and b, case ignored: the optimal string alignment distance
 * (Levenshtein's with a swap of two adjacent characters as one edit), three rows of the
 * dynamic programme */
static int distance(const char *a, const char *b)
{
    const int n = (int)strlen(a), m = (int)strlen(b);
    int rows[3][SUGGEST_MAX + 1];
    for (int j = 0; j <= m; j++) rows[0][j] = j;
    for (int i = 1; i <= n; i++) {
        int *row = rows[i % 3], *prev = rows[(i - 1) % 3], *prev2 = rows[(i + 1) % 3];
        row[0] = i;
        for (int j = 1; j <= m; j++) {
            int best = prev[j - 1] + !same(a[i - 1], b[j - 1]);
            if (prev[j] + 1 < best) best = prev[j] + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            if (i > 1 && j > 1 && same(a[i - 1], b[j - 2]) && same(a[i - 2], b[j - 1]) && prev2[j - 2] + 1 < best)
                best = prev2[j - 2] + 1;
            row[j] = best;
        }
    }
    return rows[n % 3][m];
}

const char *nt_suggest(const char *s, const char *const *names, int n)
{
    const int len = (int)strlen(s), limit = len / 3 > 1 ? len / 3 : 1;
    const char *best = NULL;
    int best_d = limit + 1;
    if (len == 0 || len > SUGGEST_MAX) return NULL;
    for (int i = 0; i < n; i++) {
        if (!names[i] || strlen(names[i]) > SUGGEST_MAX) continue;
        const int d = distance(s, names[i]);
        if (d < best_d) { best_d = d; best = names[i]; }
    }
    return best;
}

const char *nt_did_you_mean(const char *s, const char *const *names, int n, char *buf, size_t cap)
{
    const char *near = nt_suggest(s, names, n);
    if (near) snprintf(buf, cap, " (did you mean '%s'?)", near);
    else if (cap) buf[0] = 0;
    return buf;
}
