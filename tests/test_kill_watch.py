"""What a running loop says about the kill switch: once per change, including a loop
that starts while the switch is already engaged."""

from __future__ import annotations

from interfaces.kill_watch import KillWatch


def test_each_change_is_said_once() -> None:
    said: list[str] = []
    watch = KillWatch(said.append)
    watch.check("HALTED", "daily loss")  # started halted: said after the first step
    watch.check("HALTED", "daily loss")
    watch.check("ACTIVE", None)
    watch.check("ACTIVE", None)
    watch.check("REDUCING", None)
    assert len(said) == 3
    assert said[0].startswith("kill switch HALTED (daily loss): trading stopped")
    assert said[1] == "kill switch reset: trading resumes"
    assert said[2].startswith("kill switch REDUCING (no reason recorded): only risk-reducing")
