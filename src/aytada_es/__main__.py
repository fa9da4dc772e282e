"""`python -m aytada_es` is `aytada-es`."""

import sys

from .entry import main

sys.exit(main())
