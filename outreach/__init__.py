"""The prevention outreach kit: agency profiles, the site generator and the CLI."""
