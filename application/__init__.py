"""Use cases on the eventsourcing Application, and the ports adapters implement."""
