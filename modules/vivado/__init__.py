"""FINN's builder configuration, the Vivado build, and the parsing of Vivado's reports."""
