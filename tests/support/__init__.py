"""What the tests share: paths, golden-case runner, layer and net helpers, data feeds."""
