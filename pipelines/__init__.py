"""Everything that moves data through the models: I/O, inference, training, evaluation, the CLI."""
