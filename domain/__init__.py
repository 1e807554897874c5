"""Pure trading model: aggregates, commands, approval tokens and risk guards. No I/O."""
