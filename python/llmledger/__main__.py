"""`python -m llmledger ...`: the `llmledger` command, for environments without its script.

Example:
    $ python -m llmledger prices gpt-4o
"""

import sys

from llmledger.cli import main

if __name__ == "__main__":
    sys.exit(main())
