pytest_plugins = [
    "tests._servers",
    "tests._server_postgres",
    "tests._server_mysql",
    "tests._backends",
]
