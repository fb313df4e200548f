"""The demo's progress line: redrawn in place on a terminal, a few plain lines into a pipe or a log."""

from __future__ import annotations

import io

from demo.progress import Progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_into_a_pipe_it_writes_a_line_per_quarter_and_the_final_state() -> None:
    out = io.StringIO()
    bar = Progress("importing charts", 569, stream=out)
    for done in range(1, 570):
        bar.update(done)
    bar.close()
    lines = out.getvalue().splitlines()
    assert [line.split("]")[1].split()[0] for line in lines] == ["143/569", "285/569", "427/569", "569/569"]
    assert "\r" not in out.getvalue() and lines[-1].count("#") == 28


def test_on_a_terminal_it_redraws_one_line_in_place() -> None:
    out = _Terminal()
    bar = Progress("anchoring on chain", 10, stream=out)
    bar.update(5)
    bar.update(10)  # within the redraw interval: drawn by close()
    bar.close()
    drawn = out.getvalue().split("\r")[1:]
    assert [d.split("]")[1].split()[0] for d in drawn] == ["5/10", "10/10"]
    assert out.getvalue().count("\n") == 1 and out.getvalue().endswith("\n")
