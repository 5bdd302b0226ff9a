"""Preflight checks: what must hold before an issue goes to the readers.

    run         running them on a stored issue, and remembering the report
    issue       subject, preheader, HTML, legal parts, items
    message     the built .eml against the mail rules
    page        the HTML parsed once
    spam        SpamAssassin, local tests only
    contrast    text contrast in light and dark, in headless Chromium
    result      CheckResult, CheckReport and the report as a table
"""
