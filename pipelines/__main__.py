"""`python -m pipelines ...` is the `dreamreel` command."""

import sys

from pipelines.cli import main

sys.exit(main())
