"""Helpers only the notebooks use: plots, widgets, the pipeline's live watch, the performance
lessons' measurements, and exercises with hidden solutions.

Imports: anything in the kit; nothing imports it.
"""
