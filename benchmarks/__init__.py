"""The benchmarks: scripts run as ``python benchmarks/<name>.py`` (see README.md here), importable as
``benchmarks.<name>`` from a developer's editable install, which puts the repository's folders on the path."""
