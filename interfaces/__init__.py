"""Composition root: wires adapters into the application; the CLI lives here."""
