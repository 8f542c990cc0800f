"""gunicorn's entry point for Keystone (run in Keystone's virtualenv, never imported by Glimpse).

Keystone 30 ships no WSGI script, only the application factory. oslo.config parses sys.argv when
Keystone configures itself, and gunicorn's own flags would stop it: they are hidden first. The
configuration file comes from OS_KEYSTONE_CONFIG_FILES.
"""

import importlib
import sys

sys.argv = sys.argv[:1]
application = importlib.import_module("keystone.server.wsgi").initialize_public_application()
