"""`python -m llmasos ...` is the same as the `llmasos` command."""
import sys

from .cli import main

sys.exit(main())
