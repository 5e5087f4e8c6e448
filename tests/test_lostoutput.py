"""A run's view whose output fails: it goes quiet and asks the run to stop (never raises)."""

from __future__ import annotations

import errno
import io
import os

from rich.console import Console

from prunetui.cli.lostoutput import OutputLost, RunConsole, StopWhenOutputLost
from prunetui.control import RunControl


class FailingView:
    """A view whose writes start failing after ``ok`` events, as a hung-up terminal does."""

    def __init__(self, ok: int, error: OSError) -> None:
        self.ok, self.error, self.seen = ok, error, []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.error_on_exit = exc

    def __call__(self, event):
        if len(self.seen) >= self.ok:
            raise self.error
        self.seen.append(event)


def test_a_failing_write_silences_the_view_and_stops_the_run_once():
    out, err, control = Console(file=io.StringIO()), Console(file=io.StringIO()), RunControl()
    view = FailingView(2, OSError(errno.EIO, "Input/output error"))
    with StopWhenOutputLost(view, out, err, control, "prunetui run --resume models/x") as guard:
        for event in range(5):
            guard(event)
    assert view.seen == [0, 1] and guard.lost and out.quiet and control.stop.is_set()
    said = err.file.getvalue()
    assert said.count("Output closed (Input/output error)") == 1
    assert "Resume with: prunetui run --resume models/x" in said


def test_a_working_view_is_left_alone():
    out, err, control = Console(file=io.StringIO()), Console(file=io.StringIO()), RunControl()
    view = FailingView(10, OSError(errno.EIO, "unused"))
    with StopWhenOutputLost(view, out, err, control, "x") as guard:
        guard("event")
    assert view.seen == ["event"] and not guard.lost and not control.stop.is_set()
    assert err.file.getvalue() == ""


def test_the_run_console_reports_a_closed_pipe_instead_of_exiting():
    """Rich's own console raises SystemExit(1) on a closed pipe: a run would end as failed."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    with os.fdopen(write_end, "w") as closed_pipe:
        console = RunConsole(file=closed_pipe)
        try:
            console.print("a line")
        except OutputLost as lost:
            assert "closed" in str(lost)
        else:
            raise AssertionError("no OutputLost")
        assert console.quiet
        console.print("more")  # quiet: nothing written, nothing raised
        os.write(closed_pipe.fileno(), b"x")  # the pipe's descriptor now points to /dev/null
