/* browser.c: report.html in headless Chromium (Debian's chromium), for the tests of noether
 * run: the page is loaded with every host unresolvable; its own script records how many
 * images loaded and which resources were not files; Chromium's log (--enable-logging) shows
 * every console message. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "helpers.h"
#include "browser.h"

/* ---- PNG: decoded with zlib (8-bit RGB or RGBA, not interlaced: what gnuplot's pngcairo
 * and Chromium write), to measure how much of an image is not background */

static uint32_t be32(const unsigned char *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }

static int paeth(int a, int b, int c)
{
    int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
    return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/* the fraction of pixels that differ from the top-left pixel (the background) */
double png_ink(const char *path, int *width, int *height)
{
    size_t len;
    unsigned char *s = (unsigned char *)read_file(path, &len);
    cr_assert_not_null(s, "%s missing", path);
    cr_assert(len > 33 && !memcmp(s, "\x89PNG\r\n\x1a\n", 8), "%s is not a PNG", path);
    uint32_t w = be32(s + 16), h = be32(s + 20);
    int depth = s[24], type = s[25], interlace = s[28];
    cr_assert(depth == 8 && (type == 2 || type == 6) && !interlace, "%s: unsupported PNG (depth %d type %d)", path,
              depth, type);
    int ch = type == 6 ? 4 : 3;
    size_t stride = (size_t)w * ch, zcap = 0, zlen = 0;
    unsigned char *z = NULL;
    for (size_t off = 8; off + 12 <= len;) {   /* concatenate the IDAT chunks */
        uint32_t n = be32(s + off);
        if (!memcmp(s + off + 4, "IDAT", 4)) {
            if (zlen + n > zcap) z = realloc(z, zcap = 2 * (zlen + n));
            memcpy(z + zlen, s + off + 8, n);
            zlen += n;
        }
        off += 12 + n;
    }
    uLongf rawlen = (uLongf)((stride + 1) * h);
    unsigned char *raw = malloc(rawlen), *img = malloc(stride * h);
    cr_assert_eq(uncompress(raw, &rawlen, z, zlen), Z_OK, "%s: bad zlib data", path);
    for (uint32_t y = 0; y < h; y++) {   /* undo the row filters */
        unsigned char *r = raw + y * (stride + 1), *cur = img + y * stride, *up = y ? cur - stride : NULL;
        for (size_t x = 0; x < stride; x++) {
            int a = x >= (size_t)ch ? cur[x - ch] : 0, b = up ? up[x] : 0, c = up && x >= (size_t)ch ? up[x - ch] : 0;
            int v = r[1 + x];
            switch (r[0]) {
            case 1: v += a; break;
            case 2: v += b; break;
            case 3: v += (a + b) / 2; break;
            case 4: v += paeth(a, b, c); break;
            }
            cur[x] = (unsigned char)v;
        }
    }
    size_t ink = 0;
    for (size_t i = 0; i < (size_t)w * h; i++)
        for (int k = 0; k < 3; k++)
            if (abs(img[i * ch + k] - img[k]) > 16) { ink++; break; }
    free(s); free(z); free(raw); free(img);
    if (width) *width = (int)w;
    if (height) *height = (int)h;
    return (double)ink / ((double)w * h);
}

static int attr_int(const char *dom, const char *name, int which)
{
    char key[64];
    snprintf(key, sizeof key, "%s=\"", name);
    const char *a = strstr(dom, key);
    cr_assert_not_null(a, "the page's script did not run (no %s)", name);
    int x[2] = {-1, -1};
    sscanf(a + strlen(key), "%d/%d", &x[0], &x[1]);
    return x[which];
}

browsed browse(const char *html, const char *scratch)
{
    char dom[NT_PATH_MAX], log[NT_PATH_MAX], cmd[4 * NT_PATH_MAX];
    path_join(dom, scratch, "dom.html");
    path_join(log, scratch, "chromium.log");
    snprintf(cmd, sizeof cmd, "HOME=/tmp chromium --headless --no-sandbox --disable-gpu --disable-background-networking "
             "--user-data-dir=%s/chromium-profile --host-resolver-rules='MAP * ~NOTFOUND' --enable-logging=stderr "
             "--v=0 --virtual-time-budget=10000 --dump-dom file://%s > %s 2> %s", scratch, html, dom, log);
    cr_assert_eq(system(cmd), 0, "chromium --dump-dom failed");
    char *text = read_file(dom, NULL), *lg = read_file(log, NULL);
    cr_assert(text && lg);
    browsed b = {0};
    b.loaded = attr_int(text, "data-images-loaded", 0);
    b.images = attr_int(text, "data-images-loaded", 1);
    b.external = attr_int(text, "data-external-requests", 0);
    for (const char *p = lg; (p = strstr(p, ":CONSOLE")); p++) b.console++;
    free(text);
    free(lg);
    return b;
}

int report_seen(const char *dir, const char *const *want)
{
    char html[NT_PATH_MAX], shot[NT_PATH_MAX], cmd[4 * NT_PATH_MAX];
    path_join(html, dir, "report.html");
    path_join(shot, dir, "screenshot.png");
    /* a profile of its own: two Chromiums on one profile (tests run in parallel) hand the page
     * to each other */
    snprintf(cmd, sizeof cmd, "HOME=/tmp chromium --headless --no-sandbox --disable-gpu --disable-background-networking "
             "--user-data-dir=%s/chromium-profile --host-resolver-rules='MAP * ~NOTFOUND' --window-size=1280,2400 "
             "--screenshot=%s file://%s >/dev/null 2>&1", dir, shot, html);
    cr_assert_eq(system(cmd), 0, "chromium --screenshot failed");
    cr_assert_gt(png_ink(shot, NULL, NULL), 0.01, "%s: the screenshot is blank", html);   /* a blank page: < 0.001 */
    browsed b = browse(html, dir);
    char *text = read_file(html, NULL);
    int listed = 0;
    for (const char *p = text; (p = strstr(p, "<img src=\"plots/")); p++) listed++;
    cr_assert_eq(b.images, listed, "%s: %d images on the page, %d figures listed", html, b.images, listed);
    cr_assert_eq(b.loaded, b.images, "%s: %d of %d figures loaded", html, b.loaded, b.images);
    cr_assert_eq(b.external, 0, "%s: %d requests outside the run directory", html, b.external);
    cr_assert_eq(b.console, 0, "%s: %d console messages", html, b.console);
    for (int i = 0; want && want[i]; i++) {
        char tag[96];
        snprintf(tag, sizeof tag, "<img src=\"plots/%s.png\"", want[i]);
        cr_assert_not_null(strstr(text, tag), "%s: no figure %s", html, want[i]);
    }
    free(text);
    return listed;
}
