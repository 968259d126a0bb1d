import sys

from devstack.stack import main

sys.exit(main(sys.argv[1:]))
