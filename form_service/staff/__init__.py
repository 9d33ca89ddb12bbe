"""The team's side of the service: staff accounts, sign-in, the inbox and its audit trail."""
