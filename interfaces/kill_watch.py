"""What `ais run` says when the kill switch changes under a running loop.

The switch is usually flipped from elsewhere: `ais kill`, `POST /v1/kill-switch`, or a
guard tripped in another process. The loop then stops trading but keeps running: each
step still records marks and fills (so NAV, drawdown and reconciliation stay true while
it is halted) and cancels at the venue what the switch canceled, but it makes no
decisions and places no orders until an operator resets the switch, and then resumes
by itself. Exiting instead would stop that watching and turn a reset into a restart.
This says so on the console, once per change, so whoever watches the loop sees it stop
and resume.
"""

from __future__ import annotations

from collections.abc import Callable

from domain.guards import ACTIVE, HALTED, REDUCING

_NEWS = {
    HALTED: "kill switch HALTED ({reason}): trading stopped, open orders canceled; no new "
    "orders until an operator resets it (`ais kill --reset` or POST /v1/kill-switch/reset); "
    "marks and fills are still recorded",
    REDUCING: "kill switch REDUCING ({reason}): only risk-reducing orders until an "
    "operator resets it",
    ACTIVE: "kill switch reset: trading resumes",
}


class KillWatch:
    """Reports each change of the desk's kill state seen after a loop step."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.state = ACTIVE  # a loop started while halted says so after its first step

    def check(self, state: str, reason: str | None) -> None:
        if state == self.state:
            return
        self.state = state
        self.say(_NEWS[state].format(reason=reason or "no reason recorded"))
