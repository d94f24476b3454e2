"""One module per ``ssl-ser`` subcommand (see :mod:`ssl_ser.cli`)."""
