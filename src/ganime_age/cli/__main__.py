"""``python -m ganime_age.cli``: the ``ganime-age`` command."""

import sys

from ganime_age.cli import main

sys.exit(main())
