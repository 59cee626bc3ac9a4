import sys

from shotsketch.cli import main

sys.exit(main())
