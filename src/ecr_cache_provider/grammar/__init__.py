"""The languages the provider reads and writes: lifecycle policies, repository policies and repository prefixes.
Pure functions of text: no AWS call, no engine, no resource type."""
