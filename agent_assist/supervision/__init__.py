"""Supervision: accounts and roles, call review and overrides, statistics, pricing.

Reads what the runtime stored; never imports the server or the language models.
"""
