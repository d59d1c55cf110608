#!/usr/bin/env bash
# Removes what make install installed: the files of MANIFEST (meson's install log, kept by
# make install), then the folders install created, if they are empty.  usage: uninstall.sh MANIFEST
set -euo pipefail
manifest=${1:?usage: uninstall.sh MANIFEST}
[ -f "$manifest" ] || { echo "uninstall: $manifest: no install to undo (run make install first)" >&2; exit 2; }
removed=0 kept=0
while IFS= read -r path; do
  case $path in '#'* | '') continue ;; esac
  if [ -d "$path" ] && [ ! -L "$path" ]; then   # a folder install created: only if now empty
    if rmdir "$path" 2>/dev/null; then removed=$((removed + 1)); else kept=$((kept + 1)); echo "uninstall: kept $path (not empty)" >&2; fi
  elif [ -e "$path" ] || [ -L "$path" ]; then
    rm -f "$path"
    removed=$((removed + 1))
  fi
done < "$manifest"
rm -f "$manifest"
echo "uninstall: removed $removed files and folders, kept $kept folders that hold other files"
