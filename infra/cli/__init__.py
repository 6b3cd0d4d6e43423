"""The `dropreel` command line: one module per subcommand group."""
