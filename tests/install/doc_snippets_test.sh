#!/usr/bin/env bash
# Code in the docs is copied from code CI builds and runs: every fenced block right after a
# `<!-- from PATH -->` line in README.md and docs/*.md must appear verbatim, as consecutive lines, in PATH.
#   doc_snippets_test.sh <source dir>
set -euo pipefail
exec python3 - "$1" <<'PY'
import pathlib, re, sys

root = pathlib.Path(sys.argv[1])
marker = re.compile(r"<!--\s*from\s+(\S+)\s*-->")
failures = checked = 0
for doc in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
    lines = doc.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = marker.fullmatch(lines[i].strip())
        if not m:
            i += 1
            continue
        where = f"{doc.relative_to(root)}:{i + 1}"
        if i + 1 >= len(lines) or not lines[i + 1].startswith("```"):
            print(f"FAILED {where}: the marker is not followed by a code block")
            failures += 1
            i += 1
            continue
        end = i + 2
        while end < len(lines) and not lines[end].startswith("```"):
            end += 1
        block = [l.rstrip() for l in lines[i + 2:end]]
        source = root / m.group(1)
        if not source.is_file():
            print(f"FAILED {where}: {m.group(1)} does not exist")
            failures += 1
        else:
            text = [l.rstrip() for l in source.read_text(encoding="utf-8").splitlines()]
            found = any(text[k:k + len(block)] == block for k in range(len(text) - len(block) + 1))
            if not found:
                print(f"FAILED {where}: the block is not in {m.group(1)} (update the doc)")
                failures += 1
            checked += 1
        i = end + 1
if checked == 0:
    print("FAILED: no snippets found")
    failures += 1
print(f"{checked} doc snippet(s) checked, {failures} failure(s)")
sys.exit(1 if failures else 0)
PY
