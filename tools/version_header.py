#!/usr/bin/env python3
"""Writes the installed noether.h: include/noether.h with NT_VERSION written in (the source
header takes it from the build, -DNT_VERSION, so that meson.build's project version is the
one place it is written).

usage: version_header.py include/noether.h OUT.h VERSION
"""
import sys

src, out, version = sys.argv[1:]
text = open(src).read()
block = '#ifndef NT_VERSION\n#define NT_VERSION "unknown"\n#endif\n'
if text.count(block) != 1:
    raise SystemExit("version_header.py: %s: expected the NT_VERSION block once:\n%s" % (src, block))
with open(out, "w") as f:
    f.write(text.replace(block, '#define NT_VERSION "%s"\n' % version))
