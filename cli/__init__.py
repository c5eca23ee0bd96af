"""The ``schoolmesh`` command line. Heavy modules are imported inside commands."""
