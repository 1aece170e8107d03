#!/usr/bin/env python3
"""The end of tools/test: the slowest tests and the times, so growth shows in every CI note;
then, last of all, what each failed test said (CI keeps only the tail of a run's output, so the
reason for a failure has to be there, not a thousand lines up).

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
            yield case.get("name"), float(case.get("time") or 0), outcome(case), case.findtext("system-out") or ""


def failure_excerpt(output, tail_lines):
    """The FAIL lines of a test's output (where the scripts and gtest name what went wrong),
    then its last lines (a crash, a timeout, a sanitizer report)."""
    lines = output.rstrip("\n").split("\n")
    fails = [line for line in lines[:-tail_lines] if "FAIL" in line][:20]
    return fails + (["..."] if fails else []) + lines[-tail_lines:]


def minutes(seconds):
    return f"{seconds:7.1f} s ({seconds / 60:4.1f} min)"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--slowest", type=int, default=15)
    parser.add_argument("--failure-lines", type=int, default=30)
    parser.add_argument("junit", nargs="+")
    args = parser.parse_args()

    print("\n== test times")
    failures = []
    for path in args.junit:
        if not os.path.exists(path):
            print(f"{path}: no results (the run did not get that far)")
            continue
        cases = sorted(load(path), key=lambda c: -c[1])
        # BUILD_DIR/Testing/junit.xml is "BUILD_DIR"; BUILD_DIR/Testing/junit-lab.xml "BUILD_DIR (lab)".
        where = os.path.basename(os.path.dirname(os.path.dirname(os.path.abspath(path))))
        part = os.path.splitext(os.path.basename(path))[0].removeprefix("junit").lstrip("-")
        where += f" ({part})" if part else ""
        counts = {}
        failures += [(where, name, output) for name, _, result, output in cases if result == "FAILED"]
        for _, _, result, _ in cases:
            counts[result] = counts.get(result, 0) + 1
        summary = ", ".join(f"{n} {result}" for result, n in sorted(counts.items()))
        print(f"-- {where}: {len(cases)} tests ({summary}), "
              f"{sum(c[1] for c in cases):.1f} s of test time; the {min(args.slowest, len(cases))} slowest:")
        for name, seconds, result, _ in cases[: args.slowest]:
            print(f"  {seconds:8.1f} s  {result:7}  {name}")
    print("-- wall clock")
    for line in sys.stdin:
        name, _, seconds = line.strip().rpartition(" ")
        if name:
            print(f"  {name:32} {minutes(float(seconds))}")
    for where, name, output in failures:
        print(f"\n== FAILED in {where}: {name}; what it said:")
        for line in failure_excerpt(output, args.failure_lines):
            print(f"  | {line}")


if __name__ == "__main__":
    main()
