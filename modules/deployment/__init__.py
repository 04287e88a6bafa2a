"""The accelerator's I/O description (io_spec) and the deployment package for the board."""
