pytest_plugins = ["tests._servers"]
