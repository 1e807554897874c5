"""Ports: what the application needs from the outside world, injected at the edges."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from uuid import UUID

Clock = Callable[[], datetime]
IdFactory = Callable[[], UUID]
