import sys

from prunetui.cli import main

sys.exit(main())
