"""Scheduled work (escalation timers, retention): job functions and the `flask scheduler run` process.

Jobs arrive with the lawyers' issue; the web process never runs them.
"""
