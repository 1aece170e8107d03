#!/usr/bin/env python3
"""The end of tools/test: the slowest tests and the times, so growth shows in every CI note.

usage: test_times.py [--slowest N] JUNIT.xml... < phases
JUNIT.xml: ctest --output-junit files (one per ctest run; a missing file is named and skipped).
stdin: lines "PHASE SECONDS" (the phase name may contain spaces) from tools/test.
"""
import argparse
import os
import sys
import xml.etree.ElementTree as ET


def outcome(case):
    if case.find("failure") is not None or case.find("error") is not None:
        return "FAILED"
    skipped = case.find("skipped")
    if skipped is not None or case.get("status") in ("notrun", "disabled"):
        return "skipped"
    return "passed"


def load(path):
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    for suite in suites:
        for case in suite.findall("testcase"):
            yield case.get("name"), float(case.get("time") or 0), outcome(case)


def minutes(seconds):
    return f"{seconds:7.1f} s ({seconds / 60:4.1f} min)"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--slowest", type=int, default=15)
    parser.add_argument("junit", nargs="+")
    args = parser.parse_args()

    print("\n== test times")
    for path in args.junit:
        if not os.path.exists(path):
            print(f"{path}: no results (the run did not get that far)")
            continue
        cases = sorted(load(path), key=lambda c: -c[1])
        where = os.path.dirname(os.path.dirname(os.path.abspath(path)))
        counts = {}
        for _, _, result in cases:
            counts[result] = counts.get(result, 0) + 1
        summary = ", ".join(f"{n} {result}" for result, n in sorted(counts.items()))
        print(f"-- {os.path.basename(where)}: {len(cases)} tests ({summary}), "
              f"{sum(c[1] for c in cases):.1f} s of test time; the {min(args.slowest, len(cases))} slowest:")
        for name, seconds, result in cases[: args.slowest]:
            print(f"  {seconds:8.1f} s  {result:7}  {name}")
    print("-- wall clock")
    for line in sys.stdin:
        name, _, seconds = line.strip().rpartition(" ")
        if name:
            print(f"  {name:20} {minutes(float(seconds))}")


if __name__ == "__main__":
    main()
