"""Rewrites one marked section of a Markdown results file, leaving the rest as it is.

A section runs from a line starting with `<!-- NAME: begin` to `<!-- NAME: end -->`; when the file
has no such section, the new one is appended. The file is written to a temporary file and renamed.
A script that rewrites a whole results file keeps the other scripts' sections with
`marked_sections`.
"""
import os
import re


def marked_sections(path):
    """The marked sections of PATH (text from each begin marker to its end marker), in order;
    none when PATH does not exist."""
    if not os.path.exists(path):
        return []
    text = open(path).read()
    return [m.group(0) for m in
            re.finditer(r"<!-- ([\w-]+): begin.*?<!-- \1: end -->", text, re.DOTALL)]


def replace_section(path, name, lines):
    begin, end = f"<!-- {name}: begin", f"<!-- {name}: end -->"
    assert lines[0].startswith(begin) and lines[-1] == end, "section lines must carry the markers"
    text = open(path).read()
    if begin in text and end in text:
        text = text[:text.index(begin)] + "\n".join(lines) + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n"
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
