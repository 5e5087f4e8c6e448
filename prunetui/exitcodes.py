"""The exit codes of ``prunetui`` commands (the CLI returns them; sweep executors read them from
the run processes they start)."""

EXIT_OK = 0
EXIT_RUNTIME = 1  # something failed while running; the message says what to do
EXIT_USAGE = 2  # bad input (a setting, a path, missing data): starting again cannot help
EXIT_INTERRUPTED = 130  # stopped with Ctrl-C / SIGINT after a checkpoint
