"""Plots, the run report, the Netron viewer."""
