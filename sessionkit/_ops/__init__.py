"""The operator's tools, apart from the request path: the ``sessionkit`` command line
(``check``, ``stats``, ``purge``, ``new-plugin``) and what it prints.

Nothing a request runs imports from here (the demo app only borrows ``redact``, which lives in
:mod:`sessionkit._redact` for the loader too), so a web worker never loads argparse, the plugin
template or the operator's text helpers.
"""
