#!/usr/bin/env python3
"""Lists source files over FILE_MAX lines and functions over FN_MAX lines (exit 1 if any).

usage: sizes.py DIR...   CI runs it on src/ (the library and the CLI, their unit tests
included); the integration tests under tests/ are scenarios and are not held to it.
"""
import os
import re
import sys

FILE_MAX, FN_MAX = 600, 80
FN = re.compile(r"^\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)")


def code(line):
    """The line without string literals and comments, for brace counting."""
    line = re.sub(r'"(\\.|[^"\\])*"', '""', line)
    line = re.sub(r"'(\\.|[^'\\])'", "''", line)
    return line.split("//")[0]


problems = []
for top in sys.argv[1:] or ["src"]:
    for root, _, files in os.walk(top):
        for f in sorted(files):
            if not f.endswith(".rs"):
                continue
            path = os.path.join(root, f)
            lines = open(path, encoding="utf-8").read().splitlines()
            if len(lines) > FILE_MAX:
                problems.append(f"{path}: {len(lines)} lines (at most {FILE_MAX})")
            i = 0
            while i < len(lines):
                m = FN.match(lines[i])
                if not m:
                    i += 1
                    continue
                depth, j, opened = 0, i, False
                while j < len(lines):
                    c = code(lines[j])
                    depth += c.count("{") - c.count("}")
                    opened = opened or "{" in c
                    if opened and depth <= 0:
                        break
                    if not opened and c.rstrip().endswith(";"):
                        break  # a declaration without a body
                    j += 1
                n = j - i + 1
                if opened and n > FN_MAX:
                    problems.append(f"{path}:{i + 1}: fn {m.group(6)} is {n} lines (at most {FN_MAX})")
                i += 1
print("\n".join(problems))
print(f"sizes: {len(problems)} file(s) or function(s) over the limits")
sys.exit(1 if problems else 0)
