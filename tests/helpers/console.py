"""What a run's console may hold, line by line: its own stage lines, progress lines, the result table and the last
line of a failed or stopped command. Anything else (Ray's lines, a library's warning, a traceback) fails a test."""

import re

CONSOLE_LINE = re.compile("|".join([
    r"\[vstar \d\d:\d\d:\d\d\] \S.*",           # a stage line (console.say)
    r"  \S+ \[[#-]{20}\] \d+/\d+ \w+.*",        # a progress line (console.Progress)
    r"cycle  train videos .*",                   # the result table (report.table)
    r"[- ]+",
    r" *(seed|\d+) .*",
    r"vstar \w+: (failed|terminated|interrupted|error)\b.*",  # the last line of a failed or stopped command
    r"wrote /.*",                                 # what a finished command wrote
    r"# \w.*|\|.*\||- .*|!\[.*\]\(.*\)",       # a markdown result it prints (vstar demo --variants: ablations.md)
    r"Held-out accuracy of the seed model .*",
    r"",
]))


def assert_console(text: str) -> None:
    for n, line in enumerate(text.splitlines(), 1):
        assert CONSOLE_LINE.fullmatch(line), f"console line {n} is not vstar's: {line!r}\n{text[-3000:]}"
