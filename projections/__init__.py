"""Read models: pure functions of the event log, written with their tracking position."""
