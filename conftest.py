"""Root pytest configuration: load the Airbyte CDK's standard-test hooks.

The hooks parametrize `SourceTestSuiteBase` subclasses with the scenarios of
`acceptance-test-config.yml`; pytest only honours `pytest_plugins` in the root conftest.
"""

pytest_plugins = ["airbyte_cdk.test.standard_tests.pytest_hooks"]
