import sys

from include.bench.cli import main

sys.exit(main())
