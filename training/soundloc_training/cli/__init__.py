"""The console commands: argument parsing, messages and exit codes over the library modules.

Nothing outside this folder imports it (test/training/test_layers.py), so the library can be
used and tested without a command line.
"""
