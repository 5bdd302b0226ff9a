"""The readers' side: sign-up and consent, confirmations, subscribers, and returned mail (bounces, complaints)."""
