"""One module per subcommand; each exposes `register(subparsers)` which sets `func(args) -> int`."""
