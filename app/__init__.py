"""The application layer: the ``hashembed`` command line and the demo, above every stage."""
