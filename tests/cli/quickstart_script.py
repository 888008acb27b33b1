#!/usr/bin/env python3
"""quickstart_script: turns the ```sh blocks of a Markdown page into one bash script that runs
each command in order, in one shell (cd and export carry on, as for a reader at a terminal),
and checks each exit code: 0, or N when the command line ends with "# exit N". A trailing
backslash joins lines; blank lines and comment lines are skipped.
    quickstart_script.py PAGE.md > run.sh"""
import re
import shlex
import sys


def commands(path):
    out, block, cur = [], False, ""
    for raw in open(path, encoding="utf-8"):
        line = raw.rstrip("\n")
        if line.startswith("```"):
            block = (line.strip() == "```sh") if not block else False
            continue
        if not block or (not cur and (not line.strip() or line.lstrip().startswith("#"))):
            continue
        if line.endswith("\\"):
            cur += line[:-1] + " "
            continue
        out.append(cur + line)
        cur = ""
    return out


def main():
    cmds = commands(sys.argv[1])
    print("fails=0")
    for i, c in enumerate(cmds, 1):
        m = re.search(r"#\s*exit\s+(\d+)\s*$", c)
        want = m.group(1) if m else "0"
        print("echo " + shlex.quote(f"--- [{i}/{len(cmds)}] {c}"))
        print(c)
        print(f'rc=$?; if [ $rc != {want} ]; then echo "FAIL: [{i}] exit $rc, expected {want}"; fails=$((fails+1)); fi')
    print(f'echo "{len(cmds)} commands, $fails failed"')
    print('[ $fails = 0 ]')


if __name__ == "__main__":
    main()
