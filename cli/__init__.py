"""`mergequeue`: the operator's command line (see `mergequeue --help`)."""
