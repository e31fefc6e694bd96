"""Shoplake: local-first e-commerce data platform."""
