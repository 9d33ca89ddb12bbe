"""Delivery: outbox rows to partners' points of contact (e-mail, signed webhook, maildir)."""
