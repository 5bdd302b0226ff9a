"""The web side: `newsletter serve` (sign-up, unsubscribe, counted links, review links) and `newsletter preview`."""
