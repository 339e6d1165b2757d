import sys

from db.cli.app import main

sys.exit(main())
