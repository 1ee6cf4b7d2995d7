"""Cost in one place: prices (pricing), estimates before sending (estimate), the --max-cost guard (budget),
the ledger's rows and daily check (ledger), the `promptci cost` report (report), and the one rule for a
cost nobody knows (totals: None is unknown, never 0).

Nothing is imported here, so `import promptci.cost.totals` stays cheap for the low layers."""
