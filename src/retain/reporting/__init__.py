"""Reporting: plots (Axes in, Axes out) and the HTML report.

Submodules are imported explicitly (``from retain.reporting import clv_plots``) so that importing
the package does not pull in matplotlib.
"""
