"""reconciler.console: the web console — server-rendered pages, a JSON API and live updates.

``reconciler run --listen ADDR`` serves it at ``/`` beside the daemon's probes, metrics
and webhook; ``reconciler console PATH --listen ADDR`` serves it alone, read-only, with a
plan preview. Starlette on uvicorn, Jinja2 pages, htmx (vendored in ``static/``) and
server-sent events. Who may use it is declared in git (a ``Console`` document):

* ``access``   — users, tokens and roles: argon2id hashes checked, principals made;
* ``session``  — signed, expiring session cookies and their CSRF tokens;
* ``guard``    — login rate limiting, CSRF checks, security headers;
* ``port``     — what the console asks the daemon (status, sync now, retry, backups);
* ``snapshot`` — one read of the clouds and the ledgers the pages are rendered from;
* ``views``    — paging, filtering and natural-key sorting of a snapshot;
* ``pages``, ``api``, ``events``, ``auth_routes``, ``oidc`` — the routes;
* ``app``      — the Starlette application; ``serve`` runs it on uvicorn in a thread.

The console imports ``run``, ``billing``, ``store``, ``config`` and ``core``, never the
daemon: the daemon hands it a ``port.DaemonPort``.
"""
