import sys

from ssl_ser.cli import main

sys.exit(main())
