#!/usr/bin/env python3
"""Writes the manual page noether.1 and the bash completion of noether from the built
command's own --help (the top level and every command's), so that neither can disagree
with it: every command, flag, exit status and environment variable comes from there; the
template adds the prose, FILES and EXAMPLES around it.

usage: cli_docs.py NOETHER TEMPLATE.1.in CHANGELOG.md DATADIR OUT.1 OUT_COMPLETION

In the template, @VERSION@, @DATE@ (the release date of that version in CHANGELOG.md),
@DATADIR@, @SYNOPSIS@, @DESCRIPTION@, @COMMANDS@, @EXIT_STATUS@ and @ENVIRONMENT@ are
replaced; nothing else is touched.
"""
import itertools
import re
import subprocess
import sys

FLAG = re.compile(r"(?<![\w-])(--?[a-z][a-z0-9-]*)(?: ([A-Z0-9][\w.]*))?")


def run(noether, *args):
    return subprocess.run([noether, *args], check=True, capture_output=True, text=True).stdout


def blocks(text):
    """The help text as blocks of lines separated by blank lines."""
    out, cur = [], []
    for line in text.rstrip("\n").split("\n"):
        if line.strip():
            cur.append(line.rstrip())
        elif cur:
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    return out


def esc(s):
    """Text into roff: backslashes, hyphens (so flags stay copyable), a leading . or '."""
    s = s.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + s if s[:1] in (".", "'") else s


def synopsis(help_text):
    """The usage lines: from 'usage:' to the first blank line."""
    return blocks(help_text)[0]


def flags(help_text):
    """Every flag of a command, from its usage lines: {flag: metavar or None}; --help too."""
    found = {}
    for line in synopsis(help_text):
        for m in FLAG.finditer(line):
            found.setdefault(m.group(1), m.group(2))
    found.setdefault("--help", None)
    return found


def tagged(lines):
    """'  TAG   text' entries (the text may continue on deeper-indented lines), or None."""
    entries = []
    for line in lines:
        m = re.match(r"^ {2}(\S.*?)(?: {2,}(\S.*))?$", line)
        if m and not line.startswith("   "):
            entries.append([m.group(1), m.group(2) or ""])
        elif entries and line.startswith("   "):
            entries[-1][1] += " " + line.strip()
        else:
            return None
    return entries


def roff_blocks(help_text, skip_usage=True):
    """A command's help as roff: option lists as .TP entries, indented tables kept as they
    are (.nf), prose filled."""
    out = []
    for i, b in enumerate(blocks(help_text)):
        if skip_usage and i == 0:
            continue
        entries = tagged(b)
        if entries and b[0].startswith("  -"):   # an option list
            for tag, text in entries:
                out += [".TP", "\\fB" + esc(tag) + "\\fR", esc(text)]
            continue
        # prose (filled) and indented tables (kept as they are), in the order they come
        out.append(".PP")
        for indented, run_ in itertools.groupby(b, key=lambda l: l.startswith(" ")):
            run_ = list(run_)
            if indented:
                out += [".RS", ".nf"] + [esc(l[2:] if l.startswith("  ") else l) for l in run_] + [".fi", ".RE"]
            else:
                out.append(esc(" ".join(l.strip() for l in run_)))
    return out


def section(top, title):
    """The block of the top-level help that starts with 'title:' (its entries)."""
    for b in blocks(top):
        if b[0] == title + ":":
            return tagged(b[1:])
    raise SystemExit("cli_docs.py: noether --help has no '%s:' block" % title)


def manual(noether, template, changelog, datadir):
    top = run(noether, "--help")
    version = run(noether, "--version").split()[-1]
    dates = re.findall(r"^## \[?%s\]? \S+ (\d{4}-\d\d-\d\d)" % re.escape(version), changelog, re.M)
    if not dates:
        raise SystemExit("cli_docs.py: CHANGELOG.md has no '## %s - YYYY-MM-DD' heading" % version)
    tb = blocks(top)
    commands = section(top, "commands")
    body = []
    for name, what in commands:
        h = run(noether, name, "--help")
        body += [".SS \"noether %s\"" % name, esc(what[:1].upper() + what[1:]) + ".", ".PP", ".nf"]
        body += ["\\fB" + esc(l) + "\\fR" if i == 0 else esc(l) for i, l in enumerate(synopsis(h))]
        body += [".fi"] + roff_blocks(h)
    # the description: the top-level help's paragraphs (not its usage, lists or tables)
    description = [".PP\n" + esc(" ".join(b)) for b in tb[1:] if not b[0].startswith(" ") and not b[0].endswith(":")]
    table = lambda entries: "\n".join(".TP\n\\fB%s\\fR\n%s" % (esc(t), esc(x)) for t, x in entries)
    subst = {
        "VERSION": version, "DATE": dates[0], "DATADIR": esc(datadir),
        "SYNOPSIS": "\n".join([".nf"] + ["\\fB" + esc(l.replace("usage: ", "", 1).strip()) + "\\fR"
                                          for l in synopsis(top)] + [".fi"]),
        "DESCRIPTION": "\n".join(description),
        "COMMANDS": table(commands) + "\n" + "\n".join(body),
        "EXIT_STATUS": table(section(top, "exit status")),
        "ENVIRONMENT": table(section(top, "environment")),
    }
    page = re.sub(r"@([A-Z_]+)@", lambda m: subst[m.group(1)], template)
    return page, commands, top


def completion(noether, commands, top):
    lines = ["# bash completion for noether: commands, their flags, and file or folder names",
             "# for SPEC and for the flags that take a value.  Generated by tools/cli_docs.py from",
             "# noether's --help; do not edit.", "_noether()", "{",
             "    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} flags= files= dirs= values=",
             "    COMPREPLY=()",
             "    if [ \"$COMP_CWORD\" -eq 1 ]; then",
             "        COMPREPLY=($(compgen -W \"%s\" -- \"$cur\"))" % " ".join(
                 [c for c, _ in commands] + sorted(f for f in flags(top))),
             "        return", "    fi", "    case ${COMP_WORDS[1]} in"]
    for name, _ in commands:
        f = flags(run(noether, name, "--help"))
        takes = [k for k, v in f.items() if v and v[0].isalpha() and "." in v]   # P.npy, OUT.npy: a file name
        folder = [k for k, v in f.items() if v == "DIR"]
        values = [k for k, v in f.items() if v and k not in takes + folder]
        lines.append("        %s) flags=\"%s\" files=\"%s\" dirs=\"%s\" values=\"%s\" ;;"
                     % (name, " ".join(f), " ".join(takes), " ".join(folder), " ".join(values)))
    lines += ["        *) return ;;", "    esac",
              "    # a value that is not a file or folder name (a number, a method): nothing to offer",
              "    case \" $values \" in *\" $prev \"*) return ;; esac",
              "    case \" $dirs \" in *\" $prev \"*) COMPREPLY=($(compgen -d -- \"$cur\")); return ;; esac",
              "    case \" $files \" in *\" $prev \"*) COMPREPLY=($(compgen -f -- \"$cur\")); return ;; esac",
              "    if [[ $cur == -* ]]; then",
              "        COMPREPLY=($(compgen -W \"$flags\" -- \"$cur\"))",
              "    else",
              "        COMPREPLY=($(compgen -f -- \"$cur\"))",
              "    fi", "}", "complete -o filenames -F _noether noether", ""]
    return "\n".join(lines)


def main():
    noether, template, changelog, datadir, out_man, out_bash = sys.argv[1:]
    page, commands, top = manual(noether, open(template).read(), open(changelog).read(), datadir)
    with open(out_man, "w") as f:
        f.write(page)
    with open(out_bash, "w") as f:
        f.write(completion(noether, commands, top))


if __name__ == "__main__":
    main()
