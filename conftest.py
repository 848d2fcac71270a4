pytest_plugins = ["tests._servers", "tests._backends"]
