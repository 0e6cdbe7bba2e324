"""``python -m seqlab ...`` runs the command line (the same as the ``seqlab`` script)."""

import sys

from seqlab.cli import main

sys.exit(main())
