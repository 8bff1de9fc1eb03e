"""One-command experiment binaries: `python -m experiments.<name> --help`."""
