"""Converters from other prompt-testing tools' suites into promptci projects (`promptci import ...`)."""
