"""What every layer uses: the one error type and exit codes, atomic files, input checks, statistics and
the t distribution, and the metric registry. Imports nothing else of the harness."""
