/* browser.h: a run directory's report.html opened in headless Chromium (tests/browser.c). */
#ifndef NT_TEST_BROWSER_H
#define NT_TEST_BROWSER_H

/* The fraction of pixels of a PNG (8-bit RGB or RGBA, not interlaced: gnuplot's pngcairo and
 * Chromium's) that differ from its top-left pixel; its size into width, height (may be NULL). */
double png_ink(const char *path, int *width, int *height);

/* What the browser saw: images on the page and how many loaded, requests to anything but
 * files (the page's own performance entries), console messages (errors and logs). */
typedef struct {
    int images, loaded, external, console;
} browsed;

/* Opens html (an absolute path) with the network unreachable, after scripts ran. */
browsed browse(const char *html, const char *scratch);
/* The report of run directory dir as a user sees it: a desktop-width screenshot that is not
 * blank, every figure listed in the page loaded from plots/, each of the stems in want (NULL
 * ended) among them, no external request, no console message.  Returns the figures on the page. */
int report_seen(const char *dir, const char *const *want);
#endif
