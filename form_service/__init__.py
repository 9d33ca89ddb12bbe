"""The report service: accepts anonymous reports and serves the built outreach site."""
