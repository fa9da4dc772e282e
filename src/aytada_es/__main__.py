"""`python -m aytada_es` is `aytada-es`."""

import sys

from .cli import main

sys.exit(main())
