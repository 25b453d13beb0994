"""Data: generators and loaders that need no network access at run time."""
