"""Makes the `moldau` pytest plugin available when the package is not pip-installed
(running from a source tree); installed, its entry point registers it already."""


def pytest_configure(config):
    if not config.pluginmanager.has_plugin("moldau"):
        import moldau.testing.pytest_plugin as plugin

        config.pluginmanager.register(plugin, "moldau")
