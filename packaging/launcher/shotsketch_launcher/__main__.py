import sys

from shotsketch_launcher.main import main

sys.exit(main())
