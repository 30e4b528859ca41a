"""``python -m custodes``: the same as the ``custodes`` command."""

import sys

from custodes.cli import main

sys.exit(main())
