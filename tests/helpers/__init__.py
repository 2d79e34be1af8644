"""Shared test helpers: tiny models of every family, small runs, real process kills."""
