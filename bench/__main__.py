"""`python -m bench` (what `bench/run` execs after installing what is missing)."""

import sys

from bench.cli import main

sys.exit(main())
