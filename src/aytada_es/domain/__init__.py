"""The domain: projects, accounts, statuses, steps and prices. Imports nothing else of ours."""
