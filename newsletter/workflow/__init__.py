"""The routines a command runs end to end, each a visible sequence of steps over the stages:

    compose     select → render → check the size → save the draft → write out/<slug>/
    send        lock → preflight checks → deliver → publish the archive
    due         what cron's `run-due` does: the weekly routine, then scheduled sends
    autopilot   the weekly routine: feeds → compose → check → review copy → send → summary
    review      the routine's mails to reviewers: review copies and notices, each claimed once
    approval    approving and holding an issue, from the terminal or a review link
"""
