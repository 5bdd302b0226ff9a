"""The routines a command runs end to end, each a visible sequence of steps over the stages:

    compose     select → render → check the size → save the draft → write out/<slug>/
    send        lock → preflight checks → deliver → publish the archive
    due         what cron's `run-due` does: scheduled sends
"""
