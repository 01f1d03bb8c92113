"""One module per `jaxsets` subcommand: `add_arguments(parser)` and `run(args, config) -> exit code`."""
