"""gunicorn settings for Keystone's public API (read from the working directory).

Keystone parses the process's command line as its own options when the application loads, so
gunicorn runs with no arguments: everything it needs is here (GUNICORN_CMD_ARGS may override).
"""

wsgi_app = "keystone.wsgi.api:application"
bind = "0.0.0.0:5000"
workers = 2
# Keystone is imported once, then the workers fork: half the start-up work of loading it in each.
preload_app = True
worker_class = "gthread"
threads = 4
timeout = 60
graceful_timeout = 20
accesslog = "-"
errorlog = "-"
# No runtime control socket: nothing here uses it (and the service user has no home for it).
control_socket_disable = True
